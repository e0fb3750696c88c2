using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Treechunk.Ostree;

public enum ObjectType { File, DirTree, DirMeta, Commit, CommitMeta }

public enum RepoMode { Bare, Archive, BareUser, BareUserOnly }

/// <summary>
/// The OSTree object formats (ostree-core): GVariant shapes, checksums and file names. Integers
/// inside these variants are stored big-endian (OSTree swaps them before serialising).
/// </summary>
public static class OstreeObjects
{
    public const string CommitSignature = "(a{sv}aya(say)sstayay)";
    public const string DirTreeSignature = "(a(say)a(sayay))";
    public const string DirMetaSignature = "(uuua(ayay))";
    public const string FileHeaderSignature = "(uuuusa(ayay))";
    public const string ArchiveHeaderSignature = "(tuuuusa(ayay))";
    public const string CommitMetaSignature = "a{sv}";

    public static string Extension(ObjectType type, RepoMode mode) => type switch
    {
        ObjectType.File => mode == RepoMode.Archive ? "filez" : "file",
        ObjectType.DirTree => "dirtree",
        ObjectType.DirMeta => "dirmeta",
        ObjectType.Commit => "commit",
        _ => "commitmeta",
    };

    public static string RelativePath(string checksum, ObjectType type, RepoMode mode) =>
        $"objects/{checksum[..2]}/{checksum[2..]}.{Extension(type, mode)}";

    public static uint Be(uint v) => BinaryPrimitives.ReverseEndianness(v);
    public static ulong Be(ulong v) => BinaryPrimitives.ReverseEndianness(v);

    public static string Hex(byte[] checksum)
    {
        if (checksum.Length != 32) throw new TreechunkException($"invalid OSTree checksum of {checksum.Length} bytes");
        return Convert.ToHexStringLower(checksum);
    }

    public static byte[] Raw(string checksum)
    {
        ValidateChecksum(checksum);
        return Convert.FromHexString(checksum);
    }

    private static readonly System.Buffers.SearchValues<char> LowerHex = System.Buffers.SearchValues.Create("0123456789abcdef");

    public static void ValidateChecksum(string checksum)
    {
        if (checksum.Length != 64 || checksum.AsSpan().ContainsAnyExcept(LowerHex))
            throw new TreechunkException($"invalid OSTree checksum '{checksum}'");
    }

    /// <summary>OSTree xattr names are NUL-terminated byte strings; values are raw bytes. Sorted by name.</summary>
    public static List<object> XattrsToVariant(IReadOnlyList<KeyValuePair<string, byte[]>> xattrs) =>
        xattrs.OrderBy(x => x.Key, StringComparer.Ordinal)
            .Select(x => (object)new object[] { NulTerminated(x.Key), x.Value }).ToList();

    public static List<KeyValuePair<string, byte[]>> XattrsFromVariant(object value) =>
        ((List<object>)value).Cast<object[]>()
            .Select(x => KeyValuePair.Create(Posix.FileNames.Decode(((byte[])x[0]).AsSpan().TrimEnd((byte)0)), (byte[])x[1]))
            .ToList();

    private static byte[] NulTerminated(string s)
    {
        return Posix.FileNames.EncodeZ(s);
    }

    public static string Sha256Hex(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));
}

/// <summary>Directory metadata: owner, full st_mode (with S_IFDIR) and xattrs.</summary>
public sealed record DirMeta(uint Uid, uint Gid, uint Mode, IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs)
{
    public byte[] Serialize() => GVariant.Serialize(OstreeObjects.DirMetaSignature, new object[]
    {
        OstreeObjects.Be(Uid), OstreeObjects.Be(Gid), OstreeObjects.Be(Mode), OstreeObjects.XattrsToVariant(Xattrs),
    });

    public static DirMeta Parse(ReadOnlySpan<byte> data)
    {
        var v = (object[])GVariant.Parse(OstreeObjects.DirMetaSignature, data);
        return new DirMeta(OstreeObjects.Be((uint)v[0]), OstreeObjects.Be((uint)v[1]), OstreeObjects.Be((uint)v[2]), OstreeObjects.XattrsFromVariant(v[3]));
    }
}

public sealed record DirTreeFile(string Name, string Checksum);

public sealed record DirTreeDir(string Name, string TreeChecksum, string MetaChecksum);

/// <summary>A directory's listing: files and subdirectories, each sorted by name in byte order.</summary>
public sealed record DirTree(IReadOnlyList<DirTreeFile> Files, IReadOnlyList<DirTreeDir> Dirs)
{
    public byte[] Serialize() => GVariant.Serialize(OstreeObjects.DirTreeSignature, new object[]
    {
        Files.OrderBy(f => f.Name, Utf8Order.Instance).Select(f => (object)new object[] { f.Name, OstreeObjects.Raw(f.Checksum) }).ToList(),
        Dirs.OrderBy(d => d.Name, Utf8Order.Instance).Select(d => (object)new object[] { d.Name, OstreeObjects.Raw(d.TreeChecksum), OstreeObjects.Raw(d.MetaChecksum) }).ToList(),
    });

    public static DirTree Parse(ReadOnlySpan<byte> data)
    {
        var v = (object[])GVariant.Parse(OstreeObjects.DirTreeSignature, data);
        var files = ((List<object>)v[0]).Cast<object[]>().Select(f => new DirTreeFile(CheckName((string)f[0]), OstreeObjects.Hex((byte[])f[1]))).ToList();
        var dirs = ((List<object>)v[1]).Cast<object[]>().Select(d => new DirTreeDir(CheckName((string)d[0]), OstreeObjects.Hex((byte[])d[1]), OstreeObjects.Hex((byte[])d[2]))).ToList();
        return new DirTree(files, dirs);
    }

    /// <summary>Names come from untrusted objects: refuse anything that could leave the directory.</summary>
    private static string CheckName(string name) =>
        name.Length == 0 || name == "." || name == ".." || name.Contains('/')
            ? throw new TreechunkException($"invalid file name '{name}' in an OSTree dirtree")
            : name;
}

/// <summary>
/// A commit object. Timestamp is Unix seconds (stored big-endian). Metadata keeps the order it
/// was given in: ostree does not sort commit metadata, and the order is part of the checksum.
/// </summary>
public sealed record OstreeCommit(
    IReadOnlyList<KeyValuePair<string, Variant>> Metadata,
    string? Parent,
    string Subject,
    string Body,
    ulong Timestamp,
    string RootTree,
    string RootMeta)
{
    /// <summary>The rarely used "related objects" list (name, commit checksum), kept so a parsed commit re-serialises unchanged.</summary>
    public IReadOnlyList<(string Name, string Checksum)> Related { get; init; } = [];

    public byte[] Serialize() => GVariant.Serialize(OstreeObjects.CommitSignature, new object[]
    {
        Metadata.Select(m => (object)new KeyValuePair<object, object>(m.Key, m.Value)).ToList(),
        Parent != null ? OstreeObjects.Raw(Parent) : Array.Empty<byte>(),
        Related.Select(r => (object)new object[] { r.Name, OstreeObjects.Raw(r.Checksum) }).ToList(),
        Subject,
        Body,
        OstreeObjects.Be(Timestamp),
        OstreeObjects.Raw(RootTree),
        OstreeObjects.Raw(RootMeta),
    });

    public static OstreeCommit Parse(ReadOnlySpan<byte> data)
    {
        var v = (object[])GVariant.Parse(OstreeObjects.CommitSignature, data);
        var meta = ((List<object>)v[0]).Cast<KeyValuePair<object, object>>().Select(kv => KeyValuePair.Create((string)kv.Key, (Variant)kv.Value)).ToList();
        var parent = (byte[])v[1];
        var related = ((List<object>)v[2]).Cast<object[]>().Select(r => ((string)r[0], OstreeObjects.Hex((byte[])r[1]))).ToList();
        return new OstreeCommit(meta, parent.Length == 0 ? null : OstreeObjects.Hex(parent), (string)v[3], (string)v[4],
            OstreeObjects.Be((ulong)v[5]), OstreeObjects.Hex((byte[])v[6]), OstreeObjects.Hex((byte[])v[7])) { Related = related };
    }

    public string? MetadataString(string key) =>
        Metadata.FirstOrDefault(m => m.Key == key).Value is { Value: string s } ? s : null;
}

/// <summary>The header of a content object: owner, full st_mode, rdev (always 0), symlink target, xattrs.</summary>
public sealed record FileHeader(uint Uid, uint Gid, uint Mode, string SymlinkTarget, IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs)
{
    public const uint TypeMask = 0xF000, Regular = 0x8000, Symlink = 0xA000, Directory = 0x4000;

    public bool IsSymlink => (Mode & TypeMask) == Symlink;

    private object[] Members() =>
    [
        OstreeObjects.Be(Uid), OstreeObjects.Be(Gid), OstreeObjects.Be(Mode), 0u, SymlinkTarget, OstreeObjects.XattrsToVariant(Xattrs),
    ];

    /// <summary>The header as checksummed and as stored in bare objects' framing: BE32 size, 4 zero bytes, variant.</summary>
    public byte[] Framed() => Frame(GVariant.Serialize(OstreeObjects.FileHeaderSignature, Members()));

    /// <summary>The archive (.filez) header: the same plus the uncompressed size first.</summary>
    public byte[] FramedArchive(ulong size) =>
        Frame(GVariant.Serialize(OstreeObjects.ArchiveHeaderSignature, new object[] { OstreeObjects.Be(size) }.Concat(Members()).ToArray()));

    private static byte[] Frame(byte[] variant)
    {
        var framed = new byte[8 + variant.Length];
        BinaryPrimitives.WriteUInt32BigEndian(framed, (uint)variant.Length);
        variant.CopyTo(framed, 8);
        return framed;
    }

    public static FileHeader ParseVariant(ReadOnlySpan<byte> variant)
    {
        var v = (object[])GVariant.Parse(OstreeObjects.FileHeaderSignature, variant);
        return new FileHeader(OstreeObjects.Be((uint)v[0]), OstreeObjects.Be((uint)v[1]), OstreeObjects.Be((uint)v[2]), (string)v[4], OstreeObjects.XattrsFromVariant(v[5]));
    }

    public static (FileHeader Header, ulong Size) ParseArchiveVariant(ReadOnlySpan<byte> variant)
    {
        var v = (object[])GVariant.Parse(OstreeObjects.ArchiveHeaderSignature, variant);
        return (new FileHeader(OstreeObjects.Be((uint)v[1]), OstreeObjects.Be((uint)v[2]), OstreeObjects.Be((uint)v[3]), (string)v[5], OstreeObjects.XattrsFromVariant(v[6])),
            OstreeObjects.Be((ulong)v[0]));
    }
}

/// <summary>Orders strings by their UTF-8 bytes, as strcmp does (differs from UTF-16 ordinal only above U+FFFF).</summary>
public sealed class Utf8Order : IComparer<string>
{
    public static readonly Utf8Order Instance = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x == null) return -1;
        if (y == null) return 1;
        return Encoding.UTF8.GetBytes(x).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(y));
    }
}
