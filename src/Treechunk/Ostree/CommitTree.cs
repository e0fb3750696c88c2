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
    // By entry (reference): the content object of each file and symlink, the dirtree and
    // dirmeta of each directory. Entries are in compact form and checksums 32 bytes, so a
    // commit of half a million files holds no path and no hex string per entry.
    private readonly Dictionary<TreeEntry, ObjectChecksum> _contents;
    private readonly Dictionary<TreeEntry, (ObjectChecksum Tree, ObjectChecksum Meta)> _dirs;

    public string Description { get; }
    public IReadOnlyList<TreeEntry> Entries => _entries;
    public OstreeRepo Repo => _repo;
    public string CommitChecksum { get; }
    public OstreeCommit Commit { get; }
    /// <summary>The root directory's metadata, which the tree model has no entry for.</summary>
    public DirMeta RootMeta { get; }

    private CommitTree(OstreeRepo repo, string rev, string checksum, OstreeCommit commit, DirMeta rootMeta, List<TreeEntry> entries,
        Dictionary<TreeEntry, ObjectChecksum> contents, Dictionary<TreeEntry, (ObjectChecksum, ObjectChecksum)> dirs)
    {
        _repo = repo;
        CommitChecksum = checksum;
        Commit = commit;
        RootMeta = rootMeta;
        _entries = entries;
        _contents = contents;
        _dirs = dirs;
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
        var interned = new Dictionary<string, string>(StringComparer.Ordinal);
        string Intern(string name)
        {
            if (!interned.TryGetValue(name, out var shared)) interned[name] = shared = name;
            return shared;
        }
        var contents = new Dictionary<TreeEntry, List<Listed>>(ReferenceEqualityComparer.Instance);
        var dirs = new Dictionary<TreeEntry, (ObjectChecksum, ObjectChecksum)>(ReferenceEqualityComparer.Instance);
        var files = new List<Listed>();
        List<Listed> top = [];
        var names = new HashSet<string>(StringComparer.Ordinal);
        // Level by level, each level's dirtrees read (and verified) in parallel.
        List<(TreeEntry? Dir, string Tree)> level = [(null, commit.RootTree)];
        while (level.Count > 0)
        {
            var trees = ReadAll(level, d => repo.ReadDirTree(d.Tree));
            var next = new List<(TreeEntry?, string)>();
            for (int i = 0; i < level.Count; i++)
            {
                var (dir, treeChecksum) = level[i];
                var tree = trees[i];
                var listed = new List<Listed>(tree.Files.Count + tree.Dirs.Count);
                if (dir == null) top = listed;
                else contents[dir] = listed;
                names.Clear();
                string Child(string name) =>
                    names.Add(name)
                        ? Intern(name)
                        : throw new OstreeObjectException(repo.Path, treeChecksum, ObjectType.DirTree, repo.Mode, ObjectProblem.Corrupt, $"lists '{name}' twice");
                foreach (var f in tree.Files)
                {
                    var file = new Listed(dir, Child(f.Name), ObjectChecksum.Parse(f.Checksum));
                    listed.Add(file);
                    files.Add(file);
                }
                foreach (var d in tree.Dirs)
                {
                    var m = Meta(d.MetaChecksum);
                    var entry = new TreeEntry(dir, Child(d.Name), EntryType.Directory, (int)(m.Mode & 0xFFF))
                    {
                        Uid = (int)m.Uid,
                        Gid = (int)m.Gid,
                        Xattrs = Sorted(m.Xattrs),
                    };
                    dirs[entry] = (ObjectChecksum.Parse(d.TreeChecksum), ObjectChecksum.Parse(d.MetaChecksum));
                    listed.Add(new Listed(dir, entry.Name, default) { Entry = entry });
                    next.Add((entry, d.TreeChecksum));
                }
            }
            level = next;
        }
        // File headers (mode, owner, xattrs, size) need each content object's header read (the
        // object opened in an archive repo, its inode and xattrs in a bare one): the bulk of
        // opening a commit, so it runs in parallel. Equal checksums mean
        // equal headers (the header is hashed), so each object is opened once.
        var unique = files.Select(f => f.Checksum).Distinct().ToList();
        var read = ReadAll(unique, c =>
        {
            var (header, size) = repo.ReadContentHeader(c.ToString());
            return new ContentInfo(header, size, Sorted(header.Xattrs));
        });
        var headers = new Dictionary<ObjectChecksum, ContentInfo>(unique.Count);
        for (int i = 0; i < unique.Count; i++) headers[unique[i]] = read[i];
        var byEntry = new Dictionary<TreeEntry, ObjectChecksum>(files.Count, ReferenceEqualityComparer.Instance);
        foreach (var f in files)
        {
            var (h, size, xattrs) = headers[f.Checksum];
            f.Entry = new TreeEntry(f.Directory, f.Name, h.IsSymlink ? EntryType.Symlink : EntryType.Regular, (int)(h.Mode & 0xFFF))
            {
                Uid = (int)h.Uid,
                Gid = (int)h.Gid,
                Size = h.IsSymlink ? 0 : size,
                LinkTarget = h.IsSymlink ? h.SymlinkTarget : null,
                Xattrs = xattrs,
            };
            byEntry[f.Entry] = f.Checksum;
        }

        var entries = new List<TreeEntry>(files.Count + dirs.Count);
        foreach (var l in PathOrder.Walk(top, l => l.Entry!, l => contents.GetValueOrDefault(l.Entry!)))
            entries.Add(l.Entry!);
        return new CommitTree(repo, rev, checksum, commit, rootMeta, entries, byEntry, dirs);
    }

    /// <summary>A name a dirtree lists, before its entry exists (a file's needs its content header).</summary>
    private sealed class Listed(TreeEntry? directory, string name, ObjectChecksum checksum)
    {
        public TreeEntry? Directory => directory;
        public string Name => name;
        public ObjectChecksum Checksum => checksum;
        public TreeEntry? Entry;
    }

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
    private sealed record ContentInfo(FileHeader Header, long Size, IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs);

    private static IReadOnlyList<KeyValuePair<string, byte[]>> Sorted(IReadOnlyList<KeyValuePair<string, byte[]>> xattrs) =>
        xattrs.Count <= 1 ? xattrs : xattrs.OrderBy(x => x.Key, StringComparer.Ordinal).ToList();

    public TreeEntry? Find(string path) => _byPath.Find(path);

    public TreeEntry? Find(ReadOnlySpan<char> path) => _byPath.Find(path);

    /// <summary>The content object of a regular file or symlink.</summary>
    public string ContentChecksum(TreeEntry entry) => ContentOf(entry).ToString();

    public string ContentChecksum(string path) =>
        _byPath.Find(path) is { } e && _contents.TryGetValue(e, out var c)
            ? c.ToString()
            : throw new ArgumentException($"'{path}' is not a file of commit {CommitChecksum}", nameof(path));

    /// <summary>A directory's dirtree and dirmeta checksums; "" is the root.</summary>
    public (string Tree, string Meta) DirChecksums(string path)
    {
        if (path.Length == 0) return (Commit.RootTree, Commit.RootMeta);
        return _byPath.Find(path) is { } e && _dirs.TryGetValue(e, out var d)
            ? (d.Tree.ToString(), d.Meta.ToString())
            : throw new ArgumentException($"'{path}' is not a directory of commit {CommitChecksum}", nameof(path));
    }

    public Stream OpenContent(TreeEntry entry)
    {
        if (entry.Type != EntryType.Regular) throw new ArgumentException($"{entry.Path} is not a regular file", nameof(entry));
        return _repo.OpenContent(ContentOf(entry).ToString()).Content;
    }

    // This tree's own entries are found by reference; an equal entry from elsewhere by its path.
    private ObjectChecksum ContentOf(TreeEntry entry) =>
        _contents.TryGetValue(entry, out var c) || _byPath.Find(entry.Path) is { } own && _contents.TryGetValue(own, out c)
            ? c
            : throw new ArgumentException($"'{entry.Path}' is not a file of commit {CommitChecksum}", nameof(entry));

    public void Dispose() { }
}
