using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Text;
using Treechunk.Posix;
using Treechunk.Trees;

namespace Treechunk.Ostree;

/// <summary>What goes into a commit besides the tree. Defaults follow <c>ostree commit</c>.</summary>
public sealed record CommitOptions
{
    public string Subject { get; init; } = "";
    public string Body { get; init; } = "";
    /// <summary>Unix seconds; null means now, as <c>ostree commit</c> without --timestamp.</summary>
    public ulong? Timestamp { get; init; }
    /// <summary>Parent commit; null means the current commit of <see cref="Ref"/>, if that ref exists.</summary>
    public string? Parent { get; init; }
    /// <summary>Branch to point at the new commit (refs/heads/REF); null writes an orphan commit.</summary>
    public string? Ref { get; init; }
    /// <summary>Commit metadata, kept in this order (ostree does not sort it and the order is part of the checksum).</summary>
    public IReadOnlyList<KeyValuePair<string, Variant>> Metadata { get; init; } = [];
    /// <summary>
    /// Owner, mode and xattrs of the root directory, which trees do not carry as an entry. Null
    /// means: the root directory's own when the tree is a <see cref="DirectoryTree"/>, else 0:0 040755.
    /// </summary>
    public DirMeta? RootMeta { get; init; }
    /// <summary>Skip device nodes and fifos with a warning instead of failing (OSTree cannot store them).</summary>
    public bool SkipSpecialFiles { get; init; }
    public Action<string>? Warn { get; init; }
    /// <summary>Files written at once; null means one per core.</summary>
    public int? Parallelism { get; init; }
}

public sealed record CommitResult(string Checksum, string? Parent, string RootTree, string RootMeta, ulong Timestamp,
    int ContentObjects, int SkippedEntries);

/// <summary>
/// Writes a tree into a repository as one commit, producing the same objects and checksums as
/// <c>ostree commit</c> for the same tree and commit fields. Content objects are written in
/// parallel (compressing them is the expensive part in archive mode); dirtrees and dirmetas
/// follow bottom-up, then the commit, then the ref, so the ref never names a partial commit.
/// </summary>
public static class CommitWriter
{
    public const string RefBindingKey = "ostree.ref-binding";

    public static string Commit(OstreeRepo repo, ITree tree, CommitOptions options) => Write(repo, tree, options).Checksum;

    public static CommitResult Write(OstreeRepo repo, ITree tree, CommitOptions options)
    {
        if (options.Ref != null) OstreeRepo.ValidateRefName(options.Ref);
        if (options.Parent != null) OstreeObjects.ValidateChecksum(options.Parent);
        var parent = options.Parent ?? (options.Ref != null ? CurrentHead(repo, options.Ref) : null);

        using var repoLock = repo.LockShared();
        var (rootTree, rootMetaChecksum, contentCount, skipped) = WriteTreeLocked(repo, tree, options);

        var metadata = options.Metadata.ToList();
        // As `ostree commit --branch` does: appended after the caller's keys, whatever they hold.
        if (options.Ref != null)
            metadata.Add(KeyValuePair.Create(RefBindingKey, new Variant("as", new List<object> { options.Ref })));
        ulong timestamp = options.Timestamp ?? (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var commit = new OstreeCommit(metadata, parent, options.Subject, options.Body, timestamp, rootTree, rootMetaChecksum).Serialize();
        var checksum = repo.WriteMetadata(ObjectType.Commit, commit);
        if (options.Ref != null) repo.SetRef(options.Ref, checksum);
        return new CommitResult(checksum, parent, rootTree, rootMetaChecksum, timestamp, contentCount, skipped);
    }

    /// <summary>
    /// Writes a tree's content, dirtree and dirmeta objects without a commit, returning the root
    /// checksums (an importer compares them with the commit it carries).
    /// </summary>
    public static (string RootTree, string RootMeta) WriteTree(OstreeRepo repo, ITree tree, CommitOptions options)
    {
        using var repoLock = repo.LockShared();
        var (rootTree, rootMeta, _, _) = WriteTreeLocked(repo, tree, options);
        return (rootTree, rootMeta);
    }

    private static (string RootTree, string RootMeta, int ContentCount, int Skipped) WriteTreeLocked(OstreeRepo repo, ITree tree, CommitOptions options)
    {
        var entries = tree.Entries;
        var layout = Layout.Of(entries, options);
        var checksums = new string?[entries.Count];
        WriteContent(repo, tree, entries, layout.Content, checksums, options.Parallelism ?? Environment.ProcessorCount);
        foreach (var (link, target) in layout.Hardlinks) checksums[link] = checksums[target];
        var rootMeta = options.RootMeta ?? DefaultRootMeta(tree);
        var (rootTree, rootMetaChecksum) = WriteDirectories(repo, entries, layout, checksums, rootMeta);
        return (rootTree, rootMetaChecksum, layout.Content.Count, layout.Skipped);
    }

    private static string? CurrentHead(OstreeRepo repo, string name)
    {
        var file = Path.Join(repo.Path, "refs", "heads", name);
        if (!File.Exists(file)) return null;
        var text = File.ReadAllText(file).Trim();
        OstreeObjects.ValidateChecksum(text);
        return text;
    }

    private static DirMeta DefaultRootMeta(ITree tree)
    {
        if (tree is DirectoryTree dir)
        {
            var st = LibC.LStat(dir.RootPath);
            return new DirMeta(st.Uid, st.Gid, FileHeader.Directory | (uint)st.Permissions, LibC.ListXattrs(dir.RootPath));
        }
        return new DirMeta(0, 0, FileHeader.Directory | 0x1ED, []);
    }

    private sealed class DirNode
    {
        /// <summary>The directory's entry, or -1 for the root and for directories the tree only implies.</summary>
        public int Entry = -1;
        public readonly List<int> Files = new();
        public readonly List<string> Dirs = new();
    }

    /// <summary>Which entries become which objects, decided (and refused) before anything is written.</summary>
    private sealed class Layout
    {
        public readonly List<int> Content = new();
        public readonly List<(int Link, int Target)> Hardlinks = new();
        public readonly Dictionary<string, DirNode> Dirs = new(StringComparer.Ordinal) { [""] = new DirNode() };
        public int Skipped;
        private readonly Dictionary<string, int> _indexOf = new(StringComparer.Ordinal);
        private IReadOnlyList<TreeEntry> _entries = [];

        public static Layout Of(IReadOnlyList<TreeEntry> entries, CommitOptions options)
        {
            var layout = new Layout { _entries = entries };
            for (int i = 0; i < entries.Count; i++)
            {
                var e = entries[i];
                // OSTree names and symlink targets are GVariant strings, which must be UTF-8;
                // `ostree commit` refuses such names too ("Invalid UTF-8 in filename").
                if (FileNames.HasEscapedBytes(e.Path))
                    throw new TreechunkException($"{FileNames.Display(e.Path)}: the name is not valid UTF-8, and OSTree can only hold UTF-8 names");
                if (e.Type == EntryType.Symlink && e.LinkTarget != null && FileNames.HasEscapedBytes(e.LinkTarget))
                    throw new TreechunkException($"{FileNames.Display(e.Path)}: the symlink target '{FileNames.Display(e.LinkTarget)}' is not valid UTF-8, and OSTree can only hold UTF-8 targets");
                if (e.Type is EntryType.CharDevice or EntryType.BlockDevice or EntryType.Fifo)
                {
                    var what = e.Type switch { EntryType.CharDevice => "character device", EntryType.BlockDevice => "block device", _ => "fifo" };
                    if (!options.SkipSpecialFiles)
                        throw new TreechunkException($"{FileNames.Display(e.Path)}: OSTree cannot store a {what} (use --skip-special-files to leave it out)");
                    options.Warn?.Invoke($"skipping {what} {FileNames.Display(e.Path)} (OSTree cannot store it)");
                    layout.Skipped++;
                    continue;
                }
                if (e.Path.Length == 0 || !layout._indexOf.TryAdd(e.Path, i))
                    throw new TreechunkException($"'{e.Path}': empty or repeated path in the tree");
                if (e.Type == EntryType.Directory)
                {
                    layout.Dir(e.Path).Entry = i;
                    continue;
                }
                if (layout.Dirs.ContainsKey(e.Path))
                    throw new TreechunkException($"{e.Path}: is both a directory and a file in the tree");
                layout.Dir(Parent(e.Path)).Files.Add(i);
                if (e.Type is EntryType.Regular or EntryType.Symlink)
                    layout.Content.Add(i);
                else if (e.LinkTarget != null && layout._indexOf.TryGetValue(e.LinkTarget, out var target) && entries[target].Type == EntryType.Regular)
                    layout.Hardlinks.Add((i, target));
                else
                    throw new TreechunkException($"{e.Path}: hardlink to '{e.LinkTarget}', which is not an earlier regular file of the tree");
            }
            return layout;
        }

        /// <summary>The node of a directory, created (with its ancestors) when the tree only implies it.</summary>
        private DirNode Dir(string path)
        {
            if (Dirs.TryGetValue(path, out var node)) return node;
            if (_indexOf.TryGetValue(path, out var i) && _entries[i].Type != EntryType.Directory)
                throw new TreechunkException($"{path}: is both a directory and a file in the tree");
            node = new DirNode();
            Dirs[path] = node;
            Dir(Parent(path)).Dirs.Add(path);
            return node;
        }
    }

    private static void WriteContent(OstreeRepo repo, ITree tree, IReadOnlyList<TreeEntry> entries, List<int> content,
        string?[] checksums, int parallelism)
    {
        if (parallelism < 1) throw new TreechunkException($"parallelism must be at least 1 (got {parallelism})");
        // Largest first so that one big file does not start last and leave the other cores idle.
        var order = content.OrderByDescending(i => entries[i].Size).ToList();
        try
        {
            Parallel.ForEach(Partitioner.Create(order, EnumerablePartitionerOptions.NoBuffering),
                new ParallelOptions { MaxDegreeOfParallelism = parallelism },
                i => checksums[i] = WriteOne(repo, tree, entries[i]));
        }
        catch (AggregateException ae)
        {
            ExceptionDispatchInfo.Capture(ae.Flatten().InnerExceptions[0]).Throw();
        }
    }

    private static string WriteOne(OstreeRepo repo, ITree tree, TreeEntry e)
    {
        try
        {
            if (e.Type == EntryType.Symlink)
            {
                var header = new FileHeader((uint)e.Uid, (uint)e.Gid, FileHeader.Symlink | (uint)e.Mode, e.LinkTarget ?? "", e.Xattrs);
                return repo.WriteContent(header, null, 0);
            }
            using var stream = tree.OpenContent(e);
            return repo.WriteContent(new FileHeader((uint)e.Uid, (uint)e.Gid, FileHeader.Regular | (uint)e.Mode, "", e.Xattrs), stream, e.Size);
        }
        catch (TreechunkException ex)
        {
            throw new TreechunkException($"{e.Path}: {ex.Message}", ex.ExitCode, ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"{e.Path}: {ex.Message}", ExitCodes.EnvironmentError, ex);
        }
    }

    private static (string Tree, string Meta) WriteDirectories(OstreeRepo repo, IReadOnlyList<TreeEntry> entries, Layout layout,
        string?[] checksums, DirMeta rootMeta)
    {
        var written = new Dictionary<string, (string Tree, string Meta)>(StringComparer.Ordinal);
        var metaCache = new Dictionary<string, string>(StringComparer.Ordinal);
        string WriteMeta(DirMeta meta)
        {
            var bytes = meta.Serialize();
            var key = Convert.ToBase64String(bytes);
            if (!metaCache.TryGetValue(key, out var checksum))
                metaCache[key] = checksum = repo.WriteMetadata(ObjectType.DirMeta, bytes);
            return checksum;
        }
        // A child's path sorts after its parent's (it extends it), so descending order is bottom-up.
        foreach (var (path, node) in layout.Dirs.OrderByDescending(d => d.Key, StringComparer.Ordinal))
        {
            var files = node.Files.Select(i => (entries[i].Name, checksums[i]!)).ToList();
            var dirs = node.Dirs.Select(d => (Name(d), written[d].Tree, written[d].Meta)).ToList();
            var e = node.Entry >= 0 ? entries[node.Entry] : null;
            var meta = path.Length == 0 ? rootMeta
                : e != null ? new DirMeta((uint)e.Uid, (uint)e.Gid, FileHeader.Directory | (uint)e.Mode, e.Xattrs)
                : new DirMeta(0, 0, FileHeader.Directory | 0x1ED, []);
            written[path] = (repo.WriteMetadata(ObjectType.DirTree, SerializeDirTree(files, dirs)), WriteMeta(meta));
        }
        return written[""];
    }

    private static string Parent(string path) => path.LastIndexOf('/') is var i && i >= 0 ? path[..i] : "";
    private static string Name(string path) => path[(path.LastIndexOf('/') + 1)..];

    /// <summary>
    /// ostree sorts dirtree names with strcmp, i.e. by UTF-8 bytes; .NET's ordinal order is by
    /// UTF-16 units and differs for names mixing astral characters with U+E000..U+FFFF.
    /// </summary>
    private static byte[] SerializeDirTree(List<(string Name, string Checksum)> files, List<(string Name, string Tree, string Meta)> dirs)
    {
        files.Sort((a, b) => Utf8Compare(a.Name, b.Name));
        dirs.Sort((a, b) => Utf8Compare(a.Name, b.Name));
        return GVariant.Serialize(OstreeObjects.DirTreeSignature, new object[]
        {
            files.Select(f => (object)new object[] { f.Name, OstreeObjects.Raw(f.Checksum) }).ToList(),
            dirs.Select(d => (object)new object[] { d.Name, OstreeObjects.Raw(d.Tree), OstreeObjects.Raw(d.Meta) }).ToList(),
        });
    }

    internal static int Utf8Compare(string a, string b) =>
        Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b));
}
