using Treechunk.Posix;

namespace Treechunk.Trees;

/// <summary>
/// A tree read from a root directory on disk with lstat semantics: symlinks are entries, never
/// followed. Metadata is read once up front (it is small); content is streamed on demand.
/// </summary>
public sealed class DirectoryTree : ITree
{
    private readonly string _root;
    private readonly List<TreeEntry> _entries;
    private readonly PathIndex _byPath;

    public string Description => _root;
    public IReadOnlyList<TreeEntry> Entries => _entries;
    public string RootPath => _root;

    private DirectoryTree(string root, List<TreeEntry> entries)
    {
        _root = root;
        _entries = entries;
        _byPath = new PathIndex(entries);
    }

    /// <param name="warn">Receives one line for each entry that cannot be represented (sockets).</param>
    public static DirectoryTree Open(string root, Action<string>? warn = null)
    {
        root = System.IO.Path.GetFullPath(root);
        LibC.FileStatus rootStat;
        try
        {
            rootStat = LibC.LStat(root);
        }
        catch (IOException e)
        {
            throw new TreechunkException($"cannot read rootfs {root}: {FirstLine(e.Message, root)}");
        }
        if (!rootStat.IsDirectory)
            throw new TreechunkException($"rootfs {root} is not a directory");

        // Directories are read level by level, each level in parallel: a tree's metadata is
        // tens of thousands of syscalls (statx, listxattr, readlink) that overlap well. Entries
        // are made in compact form (their directory's entry and a name shared by all entries of
        // that name), so the tree holds no path string per entry.
        var names = new System.Collections.Concurrent.ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var children = new Dictionary<TreeEntry, List<RawEntry>>(ReferenceEqualityComparer.Instance);
        List<RawEntry> top = [];
        int count = 0;
        List<TreeEntry?> level = [null];
        while (level.Count > 0)
        {
            var scanned = new ScannedDirectory[level.Count];
            Parallel.For(0, level.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                var result = scanned[i] = new ScannedDirectory(level[i]);
                try { result.Entries = ScanDirectory(root, level[i], names, result.Warnings); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or TreechunkException) { result.Error = e; }
            });
            // The same messages whatever the scheduling: warnings in directory order, and the
            // error of the first failing directory in path order.
            ScannedDirectory? failed = null;
            foreach (var d in scanned)
                if (d.Error != null && (failed == null || string.CompareOrdinal(d.Dir?.Path ?? "", failed.Dir?.Path ?? "") < 0)) failed = d;
            if (failed != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed.Error!);
            level = [];
            foreach (var d in scanned)
            {
                foreach (var w in d.Warnings) warn?.Invoke(w);
                if (d.Dir == null) top = d.Entries;
                else children[d.Dir] = d.Entries;
                count += d.Entries.Count;
                foreach (var r in d.Entries) if (r.Entry.Type == EntryType.Directory) level.Add(r.Entry);
            }
        }

        // The first path of a multiply-linked inode in sort order carries the data.
        var firstPath = new Dictionary<InodeId, string>();
        var entries = new List<TreeEntry>(count);
        foreach (var (entry, dev, ino, nlink) in PathOrder.Walk(top, r => r.Entry, r => children.GetValueOrDefault(r.Entry)))
        {
            if (entry.Type == EntryType.Regular && nlink > 1)
            {
                var id = new InodeId(dev, ino);
                if (firstPath.TryGetValue(id, out var first))
                {
                    entries.Add(entry with { Type = EntryType.Hardlink, LinkTarget = first, Size = 0 });
                    continue;
                }
                firstPath[id] = entry.Path;
            }
            entries.Add(entry);
        }
        return new DirectoryTree(root, entries);
    }

    // Classes, not structs: framework collections of reference types share precompiled code,
    // while each struct instantiation is compiled at run time, on every short build.
    private sealed record RawEntry(TreeEntry Entry, ulong Dev, ulong Ino, uint Nlink);
    private sealed record InodeId(ulong Dev, ulong Ino);

    private sealed class ScannedDirectory(TreeEntry? dir)
    {
        public TreeEntry? Dir => dir;
        public List<RawEntry> Entries = [];
        public readonly List<string> Warnings = [];
        public Exception? Error;
    }

    /// <summary>The entries directly under <paramref name="directory"/> (null: the root), each read with one statx (names only from readdir).</summary>
    private static List<RawEntry> ScanDirectory(string root, TreeEntry? directory, System.Collections.Concurrent.ConcurrentDictionary<string, string> names, List<string> warnings)
    {
        var rel = directory?.Path ?? "";
        var dir = rel.Length == 0 ? root : System.IO.Path.Join(root, rel);
        List<string> listed;
        try
        {
            listed = LibC.ListDirectory(dir);
        }
        catch (IOException e)
        {
            throw new TreechunkException(e.Message, ExitCodes.EnvironmentError);
        }
        var result = new List<RawEntry>(listed.Count);
        foreach (var name in listed)
        {
            var full = System.IO.Path.Join(dir, name);
            var st = LibC.LStat(full);
            if (st.IsSocket)
            {
                warnings.Add($"skipping socket {FileNames.Display(rel.Length == 0 ? name : rel + "/" + name)} (sockets cannot be stored in an image)");
                continue;
            }
            var type = st.IsDirectory ? EntryType.Directory
                : st.IsRegular ? EntryType.Regular
                : st.IsSymlink ? EntryType.Symlink
                : st.IsCharDevice ? EntryType.CharDevice
                : st.IsBlockDevice ? EntryType.BlockDevice
                : st.IsFifo ? EntryType.Fifo
                : throw new TreechunkException($"unsupported file type at {FileNames.Display(rel.Length == 0 ? name : rel + "/" + name)}");
            var entry = new TreeEntry(directory, names.GetOrAdd(name, name), type, st.Permissions)
            {
                Uid = (int)st.Uid,
                Gid = (int)st.Gid,
                Size = type == EntryType.Regular ? st.Size : 0,
                LinkTarget = type == EntryType.Symlink ? LibC.ReadLink(full) : null,
                DevMajor = (int)st.RdevMajor,
                DevMinor = (int)st.RdevMinor,
                MTime = st.MTime,
                Xattrs = LibC.ListXattrs(full),
                // Only a file with further links has an inode identity worth keeping (and the
                // memory for it): a directory's link count says nothing about hardlinks.
                InodeKey = type == EntryType.Regular && st.Nlink > 1 ? st.Inode : 0,
                LinkCount = type == EntryType.Regular ? (int)st.Nlink : 1,
            };
            result.Add(new RawEntry(entry, st.Device, st.Inode, st.Nlink));
        }
        return result;
    }

    private static string FirstLine(string message, string root) =>
        message.Replace("cannot stat " + root + ": ", "");

    public Stream OpenContent(TreeEntry entry) => PosixFileStream.OpenRead(System.IO.Path.Join(_root, entry.Path));

    public TreeEntry? Find(string path) => _byPath.Find(path);

    public TreeEntry? Find(ReadOnlySpan<char> path) => _byPath.Find(path);

    public void Dispose() { }
}
