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
/// <remarks>
/// An entry holds its path either as a string or, when a scan makes it (<see cref="DirectoryTree"/>),
/// as its directory's entry and its own name: on a tree of 500k entries the path strings were
/// about 140 bytes each, the largest part of the build's memory, while a name is shared by every
/// entry of that name. <see cref="Path"/> then composes the string on each call, so code that
/// keeps something per entry keys it by the entry, not by its path; <see cref="PathEquals"/>,
/// <see cref="WritePath"/> and <see cref="ComparePaths"/> work without composing.
/// </remarks>
public sealed record TreeEntry
{
    // The path when _directory is null; else (compact form) the name within _directory. An
    // entry at the root is the same either way: its name is its path.
    private readonly string _text = "";
    private readonly TreeEntry? _directory;
    // Fields most entries leave at their defaults, shared until one is set: 80 bytes an entry.
    private readonly Uncommon _uncommon = Uncommon.Default;

    public TreeEntry() { }

    /// <summary>An entry named <paramref name="name"/> in the directory entry <paramref name="directory"/> (null: the root).</summary>
    // Path is made from the directory and the name, so it is set although no string is stored.
#pragma warning disable CS8618
    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
    public TreeEntry(TreeEntry? directory, string name, EntryType type, int mode)
#pragma warning restore CS8618
    {
        _directory = directory;
        _text = name;
        Type = type;
        Mode = mode;
    }

    public required string Path
    {
        get => _directory == null ? _text : Compose();
        init
        {
            _text = value;
            _directory = null;
        }
    }

    public required EntryType Type { get; init; }
    /// <summary>Permission bits including setuid, setgid and sticky (the low 12 bits of st_mode).</summary>
    public required int Mode { get; init; }
    public int Uid { get => _uncommon.Uid; init { if (value != _uncommon.Uid) _uncommon = _uncommon with { Uid = value }; } }
    public int Gid { get => _uncommon.Gid; init { if (value != _uncommon.Gid) _uncommon = _uncommon with { Gid = value }; } }
    /// <summary>Content size of a regular file; 0 for everything else.</summary>
    public long Size { get; init; }
    /// <summary>Symlink target, or for a hardlink the tree path of the first link of the inode.</summary>
    public string? LinkTarget { get; init; }
    public int DevMajor { get => _uncommon.DevMajor; init { if (value != _uncommon.DevMajor) _uncommon = _uncommon with { DevMajor = value }; } }
    public int DevMinor { get => _uncommon.DevMinor; init { if (value != _uncommon.DevMinor) _uncommon = _uncommon with { DevMinor = value }; } }
    /// <summary>Modification time in Unix seconds as found; writers clamp it to SOURCE_DATE_EPOCH.</summary>
    public long MTime { get; init; }
    /// <summary>Extended attributes, sorted by name (ordinal), values are raw bytes.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs { get; init; } = [];
    /// <summary>Identity of the inode within the tree (0 when unknown); equal ids are hardlinks.</summary>
    public ulong InodeKey { get => _uncommon.InodeKey; init { if (value != _uncommon.InodeKey) _uncommon = _uncommon with { InodeKey = value }; } }
    /// <summary>Number of links to the inode as found in the source (regular files only).</summary>
    public int LinkCount { get => _uncommon.LinkCount; init { if (value != _uncommon.LinkCount) _uncommon = _uncommon with { LinkCount = value }; } }

    // A record, so that an entry copied with `with` and then changed gets its own copy.
    private sealed record Uncommon(int Uid, int Gid, int DevMajor, int DevMinor, ulong InodeKey, int LinkCount)
    {
        public static readonly Uncommon Default = new(0, 0, 0, 0, 0, 1);
    }

    public string Name => _directory != null ? _text : _text[(_text.LastIndexOf('/') + 1)..];

    public string? Parent => _directory != null
        ? _directory.Path
        : _text.LastIndexOf('/') is var i && i >= 0 ? _text[..i] : null;

    /// <summary>The entry of the directory this one is in, when the tree made it in compact form; else null.</summary>
    public TreeEntry? DirectoryEntry => _directory;

    public byte[]? GetXattr(string name)
    {
        foreach (var kv in Xattrs)
            if (kv.Key == name) return kv.Value;
        return null;
    }

    /// <summary>The length of <see cref="Path"/>, without composing it.</summary>
    public int PathLength
    {
        get
        {
            int length = 0;
            for (var e = this; ; e = e._directory)
            {
                length += e._text.Length;
                if (e._directory == null) return length;
                length++;
            }
        }
    }

    /// <summary>Writes <see cref="Path"/> into <paramref name="destination"/>, which is <see cref="PathLength"/> long.</summary>
    public void WritePath(Span<char> destination)
    {
        int end = destination.Length;
        for (var e = this; ; e = e._directory)
        {
            end -= e._text.Length;
            e._text.CopyTo(destination[end..]);
            if (e._directory == null) return;
            destination[--end] = '/';
        }
    }

    /// <summary>Whether this entry's path is <paramref name="path"/>, compared segment by segment from the end (nothing composed).</summary>
    public bool PathEquals(ReadOnlySpan<char> path)
    {
        for (var e = this; ; e = e._directory)
        {
            if (e._directory == null) return path.SequenceEqual(e._text);
            var name = e._text;
            if (!path.EndsWith(name, StringComparison.Ordinal)) return false;
            path = path[..^name.Length];
            if (path.IsEmpty || path[^1] != '/') return false;
            path = path[..^1];
        }
    }

    /// <summary>Ordinal comparison of two entries' paths (the order of <see cref="ITree.Entries"/>), composing neither.</summary>
    public static int ComparePaths(TreeEntry a, TreeEntry b)
    {
        if (a._directory == null && b._directory == null) return string.CompareOrdinal(a._text, b._text);
        if (ReferenceEquals(a, b)) return 0;
        using var pa = new PathChars(a, stackalloc char[PathChars.StackLength]);
        using var pb = new PathChars(b, stackalloc char[PathChars.StackLength]);
        return pa.Span.SequenceCompareTo(pb.Span);
    }

    /// <summary>The same hash as <c>string.GetHashCode(ReadOnlySpan&lt;char&gt;)</c> of <see cref="Path"/>.</summary>
    public int PathHashCode()
    {
        if (_directory == null) return string.GetHashCode(_text.AsSpan());
        using var path = new PathChars(this, stackalloc char[PathChars.StackLength]);
        return string.GetHashCode(path.Span);
    }

    /// <summary>Whether <see cref="Path"/> starts with <paramref name="prefix"/> (ordinal), without making the path.</summary>
    public bool PathStartsWith(ReadOnlySpan<char> prefix)
    {
        if (_directory == null) return _text.AsSpan().StartsWith(prefix, StringComparison.Ordinal);
        if (PathLength < prefix.Length) return false;
        using var path = new PathChars(this, stackalloc char[PathChars.StackLength]);
        return path.Span.StartsWith(prefix, StringComparison.Ordinal);
    }

    private string Compose() => string.Create(PathLength, this, static (span, e) => e.WritePath(span));

    // Equal entries are equal whichever form holds their paths.
    public bool Equals(TreeEntry? other) =>
        other is not null && (ReferenceEquals(this, other) ||
            Type == other.Type && Mode == other.Mode && Uid == other.Uid && Gid == other.Gid && Size == other.Size &&
            LinkTarget == other.LinkTarget && DevMajor == other.DevMajor && DevMinor == other.DevMinor && MTime == other.MTime &&
            EqualityComparer<IReadOnlyList<KeyValuePair<string, byte[]>>>.Default.Equals(Xattrs, other.Xattrs) &&
            InodeKey == other.InodeKey && LinkCount == other.LinkCount &&
            (other._directory == null ? PathEquals(other._text) : _directory == null ? other.PathEquals(_text) : ComparePaths(this, other) == 0));

    public override int GetHashCode() => HashCode.Combine(PathHashCode(), Type, Size, MTime);
}

/// <summary>
/// An entry's path written out as characters, in the caller's stack buffer when it fits and in a
/// pooled array when not: the one place the compact form is spelled out for a comparison.
/// </summary>
internal ref struct PathChars
{
    public const int StackLength = 256;
    private char[]? _rented;

    public ReadOnlySpan<char> Span { get; }

    public PathChars(TreeEntry entry, Span<char> stack)
    {
        int length = entry.PathLength;
        var buffer = length <= stack.Length ? stack[..length] : (_rented = System.Buffers.ArrayPool<char>.Shared.Rent(length)).AsSpan(0, length);
        entry.WritePath(buffer);
        Span = buffer;
    }

    public void Dispose()
    {
        if (_rented != null) System.Buffers.ArrayPool<char>.Shared.Return(_rented);
        _rented = null;
    }
}
