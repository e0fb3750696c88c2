using Treechunk.Oci;
using Treechunk.Posix;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Layers;

/// <summary>
/// The metadata of one file object of the merged tree. Several paths share one inode when they
/// are hardlinks, exactly as link(2) would make them share one on disk.
/// </summary>
public sealed class LayerInode
{
    internal LayerInode(TreeEntry meta) => Meta = meta;

    /// <summary>Never <see cref="EntryType.Hardlink"/>; <see cref="TreeEntry.Path"/> is the path it was created at.</summary>
    public TreeEntry Meta { get; internal set; }

    /// <summary>Owned by the sink (e.g. where the content was staged).</summary>
    public object? SinkData { get; set; }

    /// <summary>How many paths of the merged tree name this inode.</summary>
    public int Links { get; internal set; }
}

/// <summary>
/// Where a <see cref="LayerApplier"/> puts the merged tree. The applier has already decided
/// everything (whiteouts, replacements, refusals); a sink only carries out each step, in order.
/// Parents always exist before their children, and a directory is emptied before it is removed.
/// </summary>
public interface ILayerSink
{
    /// <summary>A new directory; its final metadata is the inode's at the end (later layers may change it).</summary>
    void CreateDirectory(string path, LayerInode dir);

    void WriteFile(string path, LayerInode file, Stream content);

    /// <summary>A further path for the inode already at <paramref name="existingPath"/>.</summary>
    void CreateHardlink(string path, string existingPath, LayerInode inode);

    /// <summary>A symlink, device node or fifo.</summary>
    void CreateSpecial(string path, LayerInode inode);

    /// <summary>Removes one path (a directory is already empty); <paramref name="lastLink"/> when no path names the inode any more.</summary>
    void Remove(string path, LayerInode inode, bool lastLink);
}

/// <summary>
/// Applies image layers in order with OCI image-spec semantics, keeping a model of the merged
/// tree so that every decision is made in one place for every kind of target: whiteouts
/// (<c>.wh.NAME</c>) and opaque markers (<c>.wh..wh..opq</c>) hide only what earlier layers
/// gave, a path replaced by a different type loses its old contents, and entries that could
/// write outside the root are refused (<c>..</c>, absolute paths, parents that are symlinks,
/// hardlinks to such places). Because the model mirrors the target exactly, refusing a symlinked
/// parent in the model means a sink never writes through a symlink.
/// </summary>
public sealed class LayerApplier
{
    private readonly ILayerSink _sink;
    private readonly Action<string>? _warn;
    private readonly Node _root;
    private int _layer;
    private string _layerName = "";

    private sealed class Node(string path, LayerInode inode, Node? parent)
    {
        public readonly string Path = path;
        public readonly LayerInode Inode = inode;
        public readonly Node? Parent = parent;
        public readonly Dictionary<string, Node>? Children =
            inode.Meta.Type == EntryType.Directory ? new(StringComparer.Ordinal) : null;
        /// <summary>The layer that last declared this path; whiteouts of that same layer leave it alone.</summary>
        public int Layer;
        public string Name => Path[(Path.LastIndexOf('/') + 1)..];
    }

    public LayerApplier(ILayerSink sink, Action<string>? warn = null)
    {
        _sink = sink;
        _warn = warn;
        _root = new Node("", new LayerInode(ImplicitDir("")) { Links = 1 }, null);
    }

    /// <summary>
    /// Applies one layer of an image, verifying while it streams that the blob's digest and size
    /// are what the descriptor says (see <see cref="Layer.OpenUncompressed"/>).
    /// </summary>
    public void ApplyLayer(Layer layer)
    {
        using var tar = layer.OpenUncompressed();
        try
        {
            ApplyTar(tar, layer.Name, leaveOpen: true);
            // The tar end marker may come before the end of the compressed stream.
            tar.CopyTo(Stream.Null);
        }
        catch (TreechunkException e) when (e.ExitCode == ExitCodes.BadInput)
        {
            // A damaged blob shows up as a tar error long before its digest can be checked;
            // the digest is the truer diagnosis, so it speaks first.
            if (Layer.CheckBlob(tar) is { } corrupt) throw new TreechunkException(corrupt, ExitCodes.VerificationFailed, e);
            throw;
        }
    }

    /// <summary>Applies one uncompressed layer tar; <paramref name="layerName"/> names it in errors (e.g. "layer sha256:…").</summary>
    public void ApplyTar(Stream tar, string layerName, bool leaveOpen = false)
    {
        _layer++;
        _layerName = layerName;
        using var reader = new TarReader(tar, layerName, leaveOpen);
        while (reader.Next() is { } entry) Apply(entry);
    }

    /// <summary>
    /// Applies one layer given as entries read earlier, so a layer read once can be applied to
    /// several models (oci diff replays each distinct layer into both images' trees). Each
    /// entry's <see cref="TarEntry.Content"/> goes to the sink as it is.
    /// </summary>
    public void ApplyEntries(IEnumerable<TarEntry> entries, string layerName)
    {
        _layer++;
        _layerName = layerName;
        foreach (var e in entries) Apply(e);
    }

    /// <summary>Every path of the merged tree (the root excluded), parents before children.</summary>
    public IReadOnlyList<(string Path, LayerInode Inode)> Snapshot()
    {
        var result = new List<(string, LayerInode)>();
        var stack = new Stack<Node>();
        stack.Push(_root);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (node != _root) result.Add((node.Path, node.Inode));
            if (node.Children != null)
                foreach (var child in node.Children.Values) stack.Push(child);
        }
        return result;
    }

    private void Apply(TarEntry e)
    {
        var raw = e.Path;
        if (raw.Contains('\0')) throw Refuse(raw, "the path contains a NUL byte");
        if (raw.StartsWith('/')) throw Refuse(raw, "absolute paths are not allowed in a layer");
        var path = TreePaths.Normalize(raw) ?? throw Refuse(raw, "the path leaves the image root through '..'");
        if (path.Length == 0)
        {
            // The root itself ("./"): its metadata belongs to whoever creates the target.
            if (e.Type != TarEntryType.Directory) throw Refuse(raw, "it names the image root but is not a directory");
            return;
        }
        var (dirPath, name) = Split(path);

        if (name.StartsWith(".wh.", StringComparison.Ordinal))
        {
            Whiteout(raw, dirPath, name);
            return;
        }

        var parent = ResolveDir(dirPath, create: true, raw, "")!;
        parent.Children!.TryGetValue(name, out var existing);
        switch (e.Type)
        {
            case TarEntryType.Directory:
            {
                var meta = Meta(e, path, EntryType.Directory);
                if (existing?.Children != null)
                {
                    existing.Inode.Meta = meta;
                    existing.Layer = _layer;
                    return;
                }
                if (existing != null) Remove(existing, keepCurrentLayer: false);
                var node = Add(parent, path, new LayerInode(meta));
                _sink.CreateDirectory(path, node.Inode);
                return;
            }
            case TarEntryType.Hardlink:
            {
                var target = ResolveHardlinkTarget(raw, e.LinkName!, path);
                if (target == existing)
                {
                    existing!.Layer = _layer;
                    return;
                }
                if (existing != null) Remove(existing, keepCurrentLayer: false);
                Add(parent, path, target.Inode);
                _sink.CreateHardlink(path, target.Path, target.Inode);
                return;
            }
            case TarEntryType.Regular:
            {
                if (existing != null) Remove(existing, keepCurrentLayer: false);
                var node = Add(parent, path, new LayerInode(Meta(e, path, EntryType.Regular)));
                _sink.WriteFile(path, node.Inode, e.Content);
                return;
            }
            default:
            {
                var type = e.Type switch
                {
                    TarEntryType.Symlink => EntryType.Symlink,
                    TarEntryType.CharDevice => EntryType.CharDevice,
                    TarEntryType.BlockDevice => EntryType.BlockDevice,
                    TarEntryType.Fifo => EntryType.Fifo,
                    _ => throw new InvalidOperationException($"unexpected tar type {e.Type}"),
                };
                if (existing != null) Remove(existing, keepCurrentLayer: false);
                var node = Add(parent, path, new LayerInode(Meta(e, path, type)));
                _sink.CreateSpecial(path, node.Inode);
                return;
            }
        }
    }

    private void Whiteout(string raw, string dirPath, string name)
    {
        var dir = ResolveDir(dirPath, create: false, raw, "");
        if (name == ".wh..wh..opq")
        {
            if (dir != null)
                foreach (var child in dir.Children!.Values.ToList()) Remove(child, keepCurrentLayer: true);
            return;
        }
        if (name.StartsWith(".wh..wh.", StringComparison.Ordinal))
        {
            // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs) that some old layers carry.
            _warn?.Invoke($"{_layerName}: ignoring unknown whiteout marker '{FileNames.Display(raw)}'");
            return;
        }
        var victim = name[4..];
        if (victim is "" or "." or "..") throw Refuse(raw, "invalid whiteout name");
        if (dir != null && dir.Children!.TryGetValue(victim, out var node)) Remove(node, keepCurrentLayer: true);
    }

    private Node ResolveHardlinkTarget(string raw, string link, string path)
    {
        if (link.Contains('\0')) throw Refuse(raw, "the hardlink target contains a NUL byte");
        if (link.StartsWith('/')) throw Refuse(raw, $"hardlink target '{link}' is an absolute path");
        var linkPath = TreePaths.Normalize(link) ?? throw Refuse(raw, $"hardlink target '{link}' leaves the image root through '..'");
        if (linkPath.Length == 0) throw Refuse(raw, "hardlink to the image root");
        var (dirPath, name) = Split(linkPath);
        var dir = ResolveDir(dirPath, create: false, raw, $"hardlink target '{link}': ");
        if (dir == null || !dir.Children!.TryGetValue(name, out var target))
            throw Refuse(raw, $"hardlink target '{link}' does not exist");
        if (target.Children != null) throw Refuse(raw, $"hardlink target '{link}' is a directory");
        if (linkPath.StartsWith(path + "/", StringComparison.Ordinal))
            throw Refuse(raw, $"hardlink target '{link}' lies inside the path it replaces");
        return target;
    }

    /// <summary>
    /// The directory node at <paramref name="dirPath"/>. With <paramref name="create"/>, missing
    /// directories are made (layers may omit parents) and a non-directory in the way is refused;
    /// without, a missing or non-directory ancestor yields null. A symlink anywhere on the way is
    /// always refused.
    /// </summary>
    private Node? ResolveDir(string dirPath, bool create, string raw, string context)
    {
        var node = _root;
        if (dirPath.Length == 0) return node;
        int start = 0;
        while (start <= dirPath.Length)
        {
            int slash = dirPath.IndexOf('/', start);
            int end = slash < 0 ? dirPath.Length : slash;
            var sub = dirPath[..end];
            var seg = dirPath[start..end];
            if (!node.Children!.TryGetValue(seg, out var child))
            {
                if (!create) return null;
                child = Add(node, sub, new LayerInode(ImplicitDir(sub)));
                _sink.CreateDirectory(sub, child.Inode);
            }
            else if (child.Inode.Meta.Type == EntryType.Symlink)
                throw Refuse(raw, $"{context}parent '{sub}' is a symlink (writing through a symlink could leave the image root)");
            else if (child.Children == null)
            {
                if (!create) return null;
                throw Refuse(raw, $"{context}parent '{sub}' is not a directory");
            }
            node = child;
            start = end + 1;
        }
        return node;
    }

    private Node Add(Node parent, string path, LayerInode inode)
    {
        var node = new Node(path, inode, parent) { Layer = _layer };
        parent.Children!.Add(node.Name, node);
        inode.Links++;
        return node;
    }

    /// <summary>
    /// Removes a node and everything under it. For whiteouts (<paramref name="keepCurrentLayer"/>)
    /// what the current layer itself declared stays, with the directories leading to it.
    /// </summary>
    private void Remove(Node node, bool keepCurrentLayer)
    {
        if (node.Children != null)
            foreach (var child in node.Children.Values.ToList()) Remove(child, keepCurrentLayer);
        if (keepCurrentLayer && (node.Layer == _layer || node.Children?.Count > 0)) return;
        node.Parent!.Children!.Remove(node.Name);
        node.Inode.Links--;
        _sink.Remove(node.Path, node.Inode, node.Inode.Links == 0);
    }

    private static (string Dir, string Name) Split(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash < 0 ? ("", path) : (path[..slash], path[(slash + 1)..]);
    }

    private static TreeEntry ImplicitDir(string path) =>
        new() { Path = path, Type = EntryType.Directory, Mode = 0b111_101_101 };

    private static TreeEntry Meta(TarEntry e, string path, EntryType type) => new()
    {
        Path = path,
        Type = type,
        Mode = e.Mode,
        Uid = e.Uid,
        Gid = e.Gid,
        Size = type == EntryType.Regular ? e.Size : 0,
        LinkTarget = type == EntryType.Symlink ? e.LinkName : null,
        DevMajor = e.DevMajor,
        DevMinor = e.DevMinor,
        MTime = e.MTime,
        Xattrs = e.Xattrs,
    };

    private TreechunkException Refuse(string raw, string why) => new($"{_layerName}: refusing entry '{FileNames.Display(raw)}': {FileNames.Display(why)}");
}
