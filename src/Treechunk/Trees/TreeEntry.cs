namespace Treechunk.Trees;

public enum EntryType
{
    Regular,
    Directory,
    Symlink,
    /// <summary>A further path of an inode already seen: <see cref="TreeEntry.LinkTarget"/> names the first path.</summary>
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

/// <summary>
/// One filesystem entry of a tree, metadata only. Paths are relative to the tree root, use '/'
/// and never start with '/' or "./"; the root itself is not an entry. Content is opened lazily
/// through the owning <see cref="ITree"/> so that a tree of any size costs memory only for its
/// metadata.
/// </summary>
public sealed record TreeEntry
{
    public required string Path { get; init; }
    public required EntryType Type { get; init; }
    /// <summary>Permission bits including setuid, setgid and sticky (the low 12 bits of st_mode).</summary>
    public required int Mode { get; init; }
    public int Uid { get; init; }
    public int Gid { get; init; }
    /// <summary>Content size of a regular file; 0 for everything else.</summary>
    public long Size { get; init; }
    /// <summary>Symlink target, or for a hardlink the tree path of the first link of the inode.</summary>
    public string? LinkTarget { get; init; }
    public int DevMajor { get; init; }
    public int DevMinor { get; init; }
    /// <summary>Modification time in Unix seconds as found; writers clamp it to SOURCE_DATE_EPOCH.</summary>
    public long MTime { get; init; }
    /// <summary>Extended attributes, sorted by name (ordinal), values are raw bytes.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs { get; init; } = [];
    /// <summary>Identity of the inode within the tree (0 when unknown); equal ids are hardlinks.</summary>
    public ulong InodeKey { get; init; }
    /// <summary>Number of links to the inode as found in the source (regular files only).</summary>
    public int LinkCount { get; init; } = 1;

    public string Name => Path[(Path.LastIndexOf('/') + 1)..];

    public string? Parent => Path.LastIndexOf('/') is var i && i >= 0 ? Path[..i] : null;

    public byte[]? GetXattr(string name)
    {
        foreach (var kv in Xattrs)
            if (kv.Key == name) return kv.Value;
        return null;
    }
}
