using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Posix;
using Treechunk.Trees;

namespace Treechunk.Layers;

/// <summary>
/// An OCI image's layers merged into one tree. Only file contents touch the disk, as plain files
/// of the current user in a private staging directory; everything else (modes, owners, xattrs,
/// device numbers, symlink targets, hardlink grouping) lives in memory. So flattening needs no
/// root, and nothing is lost to what the staging filesystem or the current user could express.
/// </summary>
public sealed class FlattenedImageTree : ITree
{
    private readonly TempDirectory _staging;

    /// <summary>The private directory holding the content of the applied layers (removed on dispose).</summary>
    internal string StagingPath => _staging.Path;
    private readonly List<TreeEntry> _entries;
    private readonly PathIndex _byPath;
    /// <summary>Staged content file of each regular file and hardlink path.</summary>
    private readonly Dictionary<string, string> _content;

    public string Description { get; }
    public IReadOnlyList<TreeEntry> Entries => _entries;

    private FlattenedImageTree(string description, TempDirectory staging, List<TreeEntry> entries, Dictionary<string, string> content)
    {
        Description = description;
        _staging = staging;
        _entries = entries;
        _content = content;
        _byPath = new PathIndex(entries);
    }

    public static FlattenedImageTree Open(Image image, Action<string>? warn)
    {
        var staging = TempDirectory.Create("flatten");
        try
        {
            var applier = new LayerApplier(new StagingSink(staging.Path), warn);
            foreach (var layer in image.Layers) applier.ApplyLayer(layer);
            return Build($"image {image.Name} ({image.Layers.Count} layers)", staging, applier.Snapshot());
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }

    private static FlattenedImageTree Build(string description, TempDirectory staging, IReadOnlyList<(string Path, LayerInode Inode)> snapshot)
    {
        var sorted = snapshot.OrderBy(e => e.Path, StringComparer.Ordinal).ToList();
        var linkCount = new Dictionary<LayerInode, int>(ReferenceEqualityComparer.Instance);
        foreach (var (_, inode) in sorted)
            if (inode.Meta.Type == EntryType.Regular)
                linkCount[inode] = linkCount.GetValueOrDefault(inode) + 1;

        // Grouping comes from the final tree, not from the layers' link entries: if the path a
        // layer linked to was later deleted, the first surviving path now carries the data.
        var first = new Dictionary<LayerInode, (string Path, ulong Key)>(ReferenceEqualityComparer.Instance);
        var entries = new List<TreeEntry>(sorted.Count);
        var content = new Dictionary<string, string>(StringComparer.Ordinal);
        ulong nextKey = 0;
        foreach (var (path, inode) in sorted)
        {
            var m = inode.Meta;
            if (m.Type != EntryType.Regular)
            {
                // Only regular files form hardlink groups in a tree; a hardlinked symlink or
                // device becomes independent copies, each its own inode.
                entries.Add(m with { Path = path, InodeKey = ++nextKey });
                continue;
            }
            content[path] = (string)inode.SinkData!;
            if (first.TryGetValue(inode, out var f))
            {
                entries.Add(m with { Path = path, Type = EntryType.Hardlink, LinkTarget = f.Path, Size = 0, InodeKey = f.Key, LinkCount = linkCount[inode] });
                continue;
            }
            first[inode] = (path, ++nextKey);
            entries.Add(m with { Path = path, InodeKey = nextKey, LinkCount = linkCount[inode] });
        }
        return new FlattenedImageTree(description, staging, entries, content);
    }

    public Stream OpenContent(TreeEntry entry)
    {
        if (!_content.TryGetValue(entry.Path, out var file))
            throw new InvalidOperationException($"{entry.Path} is not a regular file of {Description}");
        return PosixFileStream.OpenRead(file);
    }

    public TreeEntry? Find(string path) => _byPath.Find(path);

    public TreeEntry? Find(ReadOnlySpan<char> path) => _byPath.Find(path);

    public void Dispose() => _staging.Dispose();

    /// <summary>Stages each inode's content as one numbered file; paths and metadata stay in the applier's model.</summary>
    private sealed class StagingSink(string staging) : ILayerSink
    {
        private long _next;

        public void CreateDirectory(string path, LayerInode dir) { }

        public void WriteFile(string path, LayerInode file, Stream content)
        {
            var staged = Path.Join(staging, (++_next).ToString(System.Globalization.CultureInfo.InvariantCulture));
            try
            {
                using var fs = PosixFileStream.CreateNew(staged, 0x180, sparse: true);
                content.CopyTo(fs, 1 << 16);
            }
            catch (IOException e)
            {
                throw new TreechunkException($"cannot stage {FileNames.Display(path)} in {staging}: {e.Message}", ExitCodes.EnvironmentError, e);
            }
            file.SinkData = staged;
        }

        public void CreateHardlink(string path, string existingPath, LayerInode inode) { }

        public void CreateSpecial(string path, LayerInode inode) { }

        public void Remove(string path, LayerInode inode, bool lastLink)
        {
            if (lastLink && inode.SinkData is string staged) File.Delete(staged);
        }
    }
}
