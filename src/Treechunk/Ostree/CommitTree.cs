using Treechunk.Trees;

namespace Treechunk.Ostree;

/// <summary>
/// An OSTree commit seen as a tree. Metadata (every dirtree, dirmeta and content header) is read
/// up front; content streams from the repository on demand and is verified as it is read.
/// OSTree has no inodes, so two paths with the same content object are two independent
/// regular files here, never a hardlink pair.
/// </summary>
public sealed class CommitTree : ITree
{
    private readonly OstreeRepo _repo;
    private readonly List<TreeEntry> _entries;
    private readonly PathIndex _byPath;
    // Path -> content checksum for files, dirtree checksum for directories.
    private readonly Dictionary<string, string> _checksums;
    private readonly Dictionary<string, string> _metaChecksums;

    public string Description { get; }
    public IReadOnlyList<TreeEntry> Entries => _entries;
    public OstreeRepo Repo => _repo;
    public string CommitChecksum { get; }
    public OstreeCommit Commit { get; }
    /// <summary>The root directory's metadata, which the tree model has no entry for.</summary>
    public DirMeta RootMeta { get; }

    private CommitTree(OstreeRepo repo, string rev, string checksum, OstreeCommit commit, DirMeta rootMeta,
        List<TreeEntry> entries, Dictionary<string, string> checksums, Dictionary<string, string> metaChecksums)
    {
        _repo = repo;
        CommitChecksum = checksum;
        Commit = commit;
        RootMeta = rootMeta;
        _entries = entries;
        _checksums = checksums;
        _metaChecksums = metaChecksums;
        _byPath = new PathIndex(entries);
        Description = rev == checksum ? $"{repo.Path}@{checksum}" : $"{repo.Path}@{rev} ({checksum})";
    }

    public static CommitTree Open(OstreeRepo repo, string rev)
    {
        var checksum = repo.ResolveRev(rev);
        var commit = repo.ReadCommit(checksum);
        var metas = new Dictionary<string, DirMeta>(StringComparer.Ordinal);
        DirMeta Meta(string c)
        {
            if (!metas.TryGetValue(c, out var m)) metas[c] = m = repo.ReadDirMeta(c);
            return m;
        }
        var rootMeta = Meta(commit.RootMeta);
        var entries = new List<TreeEntry>();
        var checksums = new Dictionary<string, string>(StringComparer.Ordinal) { [""] = commit.RootTree };
        var metaChecksums = new Dictionary<string, string>(StringComparer.Ordinal) { [""] = commit.RootMeta };
        var names = new HashSet<string>(StringComparer.Ordinal);
        var files = new List<FileRef>();
        // Level by level, each level's dirtrees read (and verified) in parallel.
        List<FileRef> level = [new FileRef("", commit.RootTree)];
        while (level.Count > 0)
        {
            var trees = ReadAll(level, d => repo.ReadDirTree(d.Checksum));
            var next = new List<FileRef>();
            for (int i = 0; i < level.Count; i++)
            {
                var (dir, treeChecksum) = level[i];
                var tree = trees[i];
                names.Clear();
                string Child(string name)
                {
                    if (!names.Add(name))
                        throw new OstreeObjectException(repo.Path, treeChecksum, ObjectType.DirTree, repo.Mode, ObjectProblem.Corrupt, $"lists '{name}' twice");
                    return dir.Length == 0 ? name : dir + "/" + name;
                }
                foreach (var f in tree.Files)
                {
                    var path = Child(f.Name);
                    checksums[path] = f.Checksum;
                    files.Add(new FileRef(path, f.Checksum));
                }
                foreach (var d in tree.Dirs)
                {
                    var path = Child(d.Name);
                    var m = Meta(d.MetaChecksum);
                    checksums[path] = d.TreeChecksum;
                    metaChecksums[path] = d.MetaChecksum;
                    entries.Add(new TreeEntry
                    {
                        Path = path,
                        Type = EntryType.Directory,
                        Mode = (int)(m.Mode & 0xFFF),
                        Uid = (int)m.Uid,
                        Gid = (int)m.Gid,
                        Xattrs = Sorted(m.Xattrs),
                    });
                    next.Add(new FileRef(path, d.TreeChecksum));
                }
            }
            level = next;
        }
        // File headers (mode, owner, xattrs, size) need each content object opened and its header
        // parsed: the bulk of opening a commit, so it runs in parallel. Equal checksums mean
        // equal headers (the header is hashed), so each object is opened once.
        var unique = files.Select(f => f.Checksum).Distinct(StringComparer.Ordinal).ToList();
        var read = ReadAll(unique, c =>
        {
            using var obj = repo.OpenContent(c);
            return new ContentInfo(obj.Header, obj.Size);
        });
        var headers = new Dictionary<string, ContentInfo>(unique.Count, StringComparer.Ordinal);
        for (int i = 0; i < unique.Count; i++) headers[unique[i]] = read[i]!;
        foreach (var f in files)
        {
            var (h, size) = headers[f.Checksum];
            entries.Add(new TreeEntry
            {
                Path = f.Path,
                Type = h.IsSymlink ? EntryType.Symlink : EntryType.Regular,
                Mode = (int)(h.Mode & 0xFFF),
                Uid = (int)h.Uid,
                Gid = (int)h.Gid,
                Size = h.IsSymlink ? 0 : size,
                LinkTarget = h.IsSymlink ? h.SymlinkTarget : null,
                Xattrs = Sorted(h.Xattrs),
            });
        }

        entries.Sort((a, b) => TreePaths.Comparer.Compare(a.Path, b.Path));
        return new CommitTree(repo, rev, checksum, commit, rootMeta, entries, checksums, metaChecksums);
    }

    private sealed record FileRef(string Path, string Checksum);

    /// <summary>
    /// Reads objects in parallel, results in input order. On failure it throws the error of the
    /// first failing item in input order, so the message does not depend on scheduling.
    /// </summary>
    private static TResult[] ReadAll<TItem, TResult>(IReadOnlyList<TItem> items, Func<TItem, TResult> read)
    {
        var results = new TResult[items.Count];
        var errors = new Exception?[items.Count];
        Parallel.For(0, items.Count, i =>
        {
            try { results[i] = read(items[i]); }
            catch (Exception e) { errors[i] = e; }
        });
        if (errors.FirstOrDefault(e => e != null) is { } error)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return results;
    }
    private sealed record ContentInfo(FileHeader Header, long Size);

    private static IReadOnlyList<KeyValuePair<string, byte[]>> Sorted(IReadOnlyList<KeyValuePair<string, byte[]>> xattrs) =>
        xattrs.Count <= 1 ? xattrs : xattrs.OrderBy(x => x.Key, StringComparer.Ordinal).ToList();

    public TreeEntry? Find(string path) => _byPath.Find(path);

    public TreeEntry? Find(ReadOnlySpan<char> path) => _byPath.Find(path);

    /// <summary>The content object of a regular file or symlink.</summary>
    public string ContentChecksum(TreeEntry entry) => ContentChecksum(entry.Path);

    public string ContentChecksum(string path) =>
        _byPath.TryGetValue(path, out var e) && e.Type != EntryType.Directory
            ? _checksums[path]
            : throw new ArgumentException($"'{path}' is not a file of commit {CommitChecksum}", nameof(path));

    /// <summary>A directory's dirtree and dirmeta checksums; "" is the root.</summary>
    public (string Tree, string Meta) DirChecksums(string path) =>
        _metaChecksums.TryGetValue(path, out var meta)
            ? (_checksums[path], meta)
            : throw new ArgumentException($"'{path}' is not a directory of commit {CommitChecksum}", nameof(path));

    public Stream OpenContent(TreeEntry entry)
    {
        if (entry.Type != EntryType.Regular) throw new ArgumentException($"{entry.Path} is not a regular file", nameof(entry));
        return _repo.OpenContent(ContentChecksum(entry.Path)).Content;
    }

    public void Dispose() { }
}
