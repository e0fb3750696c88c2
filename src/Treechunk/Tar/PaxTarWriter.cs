using System.Buffers;
using System.Text;
using System.Text.Unicode;
using Treechunk.Posix;
using Treechunk.Trees;

namespace Treechunk.Tar;

/// <summary>
/// Writes reproducible PAX tar streams from tree entries. Our own rather than System.Formats.Tar
/// because PAX values there are strings: binary xattr values (security.capability) would be
/// re-encoded, and we need byte-exact control of every header for bit-for-bit reproducible layers.
/// Rules: numeric ids only (no user/group names), mtime clamped to the given epoch, no atime or
/// ctime, PAX records sorted by key, PAX header names derived from the entry path alone.
/// </summary>
public sealed class PaxTarWriter : IDisposable
{
    private const int Block = 512;
    private const long MaxOctal11 = 0x1FFFFFFFF; // 8 GiB - 1 fits in 11 octal digits
    private const int MaxOctal7 = 0x1FFFFF;
    private readonly Stream _out;
    private readonly long _epoch;
    private readonly byte[] _header = new byte[Block];
    private readonly byte[] _copyBuffer = ArrayPool<byte>.Shared.Rent(1 << 17);
    private bool _finished;

    public PaxTarWriter(Stream output, long sourceDateEpoch)
    {
        _out = output;
        _epoch = sourceDateEpoch;
    }

    /// <summary>Writes one entry; <paramref name="content"/> must yield exactly entry.Size bytes for a regular file.</summary>
    public void Write(TreeEntry entry, Stream? content)
    {
        long size = WriteHeader(entry);
        if (size > 0)
        {
            if (content == null) throw new ArgumentNullException(nameof(content));
            CopyExactly(content, size, entry.Path);
            _out.Write(Padding(size));
        }
    }

    /// <summary>The zeros that follow <paramref name="size"/> content bytes up to the next 512-byte block.</summary>
    public static ReadOnlySpan<byte> Padding(long size) => Zeros.AsSpan(0, (int)((Block - size % Block) % Block));

    private static readonly byte[] Zeros = new byte[Block];

    /// <summary>
    /// Writes an entry's headers only (PAX extended header, if any, and the ustar block) and
    /// returns how many content bytes the entry has. A caller that frames content on its own
    /// (zstd:chunked) writes exactly that many bytes and then <see cref="Padding"/>, which gives
    /// the same stream <see cref="Write"/> does.
    /// </summary>
    public long WriteHeader(TreeEntry entry)
    {
        string name = entry.Type == EntryType.Directory ? entry.Path + "/" : entry.Path;
        long mtime = Math.Min(Math.Max(entry.MTime, 0), _epoch);
        long size = entry.Type == EntryType.Regular ? entry.Size : 0;
        string link = entry.LinkTarget ?? "";

        var pax = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        // Names are bytes (see FileNames): one that is not UTF-8 goes into the ustar fields as
        // is when it fits, else into PAX records marked hdrcharset=BINARY, as GNU tar writes
        // them and GNU tar and Go read them back byte for byte.
        var nameBytes = FileNames.Encode(name);
        var (prefix, shortName) = SplitUstarName(nameBytes);
        if (shortName == null) pax["path"] = nameBytes;
        var linkBytes = FileNames.Encode(link);
        if (linkBytes.Length > 100) pax["linkpath"] = linkBytes;
        if ((pax.TryGetValue("path", out var p) && !Utf8.IsValid(p)) || (pax.TryGetValue("linkpath", out var l) && !Utf8.IsValid(l)))
            pax["hdrcharset"] = "BINARY"u8.ToArray();
        if (size > MaxOctal11) pax["size"] = Ascii(size.ToString());
        if (entry.Uid > MaxOctal7 || entry.Uid < 0) pax["uid"] = Ascii(((uint)entry.Uid).ToString());
        if (entry.Gid > MaxOctal7 || entry.Gid < 0) pax["gid"] = Ascii(((uint)entry.Gid).ToString());
        foreach (var (key, value) in entry.Xattrs)
            pax["SCHILY.xattr." + key] = value;

        if (pax.Count > 0) WritePaxHeader(nameBytes, pax);

        Array.Clear(_header);
        var h = _header.AsSpan();
        if (shortName != null)
        {
            shortName.CopyTo(h);
            prefix?.CopyTo(h[345..]);
        }
        else
        {
            // Readers use the PAX path; the ustar name is a truncated hint for old tools.
            nameBytes.AsSpan(0, Math.Min(100, nameBytes.Length)).CopyTo(h);
        }
        Octal(h.Slice(100, 8), entry.Mode & 0xFFF);
        Octal(h.Slice(108, 8), entry.Uid is >= 0 and <= MaxOctal7 ? entry.Uid : 0);
        Octal(h.Slice(116, 8), entry.Gid is >= 0 and <= MaxOctal7 ? entry.Gid : 0);
        Octal(h.Slice(124, 12), size <= MaxOctal11 ? size : 0);
        Octal(h.Slice(136, 12), mtime);
        h[156] = entry.Type switch
        {
            EntryType.Regular => (byte)'0',
            EntryType.Hardlink => (byte)'1',
            EntryType.Symlink => (byte)'2',
            EntryType.CharDevice => (byte)'3',
            EntryType.BlockDevice => (byte)'4',
            EntryType.Directory => (byte)'5',
            EntryType.Fifo => (byte)'6',
            _ => throw new ArgumentOutOfRangeException(nameof(entry)),
        };
        linkBytes.AsSpan(0, Math.Min(100, linkBytes.Length)).CopyTo(h[157..]);
        "ustar\0"u8.CopyTo(h[257..]);
        "00"u8.CopyTo(h[263..]);
        if (entry.Type is EntryType.CharDevice or EntryType.BlockDevice)
        {
            Octal(h.Slice(329, 8), entry.DevMajor);
            Octal(h.Slice(337, 8), entry.DevMinor);
        }
        Checksum(h);
        _out.Write(_header);
        return size;
    }

    /// <summary>Writes raw bytes as a regular file entry (used for small generated files such as index.json in an archive).</summary>
    public void WriteFile(string path, ReadOnlySpan<byte> data, int mode = 0x1A4)
    {
        using var ms = new MemoryStream(data.ToArray());
        Write(new TreeEntry { Path = path, Type = EntryType.Regular, Mode = mode, Size = data.Length }, ms);
    }

    public void Finish()
    {
        if (_finished) return;
        _finished = true;
        Span<byte> zeros = stackalloc byte[Block * 2];
        zeros.Clear();
        _out.Write(zeros);
    }

    private void CopyExactly(Stream content, long size, string path)
    {
        long left = size;
        while (left > 0)
        {
            int n = content.Read(_copyBuffer, 0, (int)Math.Min(_copyBuffer.Length, left));
            if (n == 0) throw new TreechunkException($"{FileNames.Display(path)}: file shrank while it was being read (expected {size} bytes)", ExitCodes.EnvironmentError);
            _out.Write(_copyBuffer, 0, n);
            left -= n;
        }
    }

    private void Pad(long size)
    {
        int rem = (int)(size % Block);
        if (rem == 0) return;
        Span<byte> zeros = stackalloc byte[Block - rem];
        zeros.Clear();
        _out.Write(zeros);
    }

    private void WritePaxHeader(byte[] nameBytes, SortedDictionary<string, byte[]> records)
    {
        using var body = new MemoryStream();
        foreach (var (key, value) in records)
        {
            // "<len> <key>=<value>\n" where len counts its own digits.
            var keyBytes = FileNames.Encode(key);
            int baseLen = keyBytes.Length + value.Length + 3;
            int len = baseLen + 1;
            while (len.ToString().Length + baseLen != len) len++;
            body.Write(Ascii(len + " "));
            body.Write(keyBytes);
            body.WriteByte((byte)'=');
            body.Write(value);
            body.WriteByte((byte)'\n');
        }
        // Deterministic header name, like Go's archive/tar: dir/PaxHeaders.0/base.
        var name = nameBytes.AsSpan().TrimEnd((byte)'/');
        int slash = name.LastIndexOf((byte)'/');
        var paxNameBytes = new byte[name.Length + "PaxHeaders.0/".Length];
        name[..(slash + 1)].CopyTo(paxNameBytes);
        "PaxHeaders.0/"u8.CopyTo(paxNameBytes.AsSpan(slash + 1));
        name[(slash + 1)..].CopyTo(paxNameBytes.AsSpan(slash + 1 + "PaxHeaders.0/".Length));
        Array.Clear(_header);
        var h = _header.AsSpan();
        paxNameBytes.AsSpan(0, Math.Min(100, paxNameBytes.Length)).CopyTo(h);
        Octal(h.Slice(100, 8), 0x1A4);
        Octal(h.Slice(108, 8), 0);
        Octal(h.Slice(116, 8), 0);
        Octal(h.Slice(124, 12), body.Length);
        Octal(h.Slice(136, 12), 0);
        h[156] = (byte)'x';
        "ustar\0"u8.CopyTo(h[257..]);
        "00"u8.CopyTo(h[263..]);
        Checksum(h);
        _out.Write(_header);
        body.Position = 0;
        body.CopyTo(_out);
        Pad(body.Length);
    }

    /// <summary>Splits a name into ustar prefix (155) and name (100) at a '/', or returns a null name when it does not fit.</summary>
    private static (byte[]? Prefix, byte[]? Name) SplitUstarName(byte[] name)
    {
        if (name.Length <= 100) return (null, name);
        if (name.Length > 256) return (null, null);
        for (int i = name.Length - 1; i > 0; i--)
        {
            if (name[i] != '/') continue;
            int nameLen = name.Length - i - 1;
            if (nameLen > 100 || nameLen == 0) return (null, null);
            if (i <= 155) return (name[..i], name[(i + 1)..]);
        }
        return (null, null);
    }

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    private static void Octal(Span<byte> field, long value)
    {
        // Zero-padded octal digits followed by one NUL, as GNU tar and Go write them.
        int digits = field.Length - 1;
        for (int i = digits - 1; i >= 0; i--)
        {
            field[i] = (byte)('0' + (value & 7));
            value >>= 3;
        }
        field[digits] = 0;
    }

    private static void Checksum(Span<byte> h)
    {
        h.Slice(148, 8).Fill((byte)' ');
        int sum = 0;
        foreach (var b in h) sum += b;
        // Six octal digits, NUL, space.
        for (int i = 5; i >= 0; i--)
        {
            h[148 + i] = (byte)('0' + (sum & 7));
            sum >>= 3;
        }
        h[154] = 0;
        h[155] = (byte)' ';
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(_copyBuffer);
}
