using System.Buffers;
using System.Text;

namespace Treechunk.Tar;

public enum TarEntryType
{
    Regular,
    Hardlink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

/// <summary>
/// One member of a tar archive, with every extension header (PAX 'x'/'g', GNU 'L'/'K') already
/// folded in. <see cref="Content"/> is valid only until the next call to <see cref="TarReader.Next"/>.
/// </summary>
public sealed class TarEntry
{
    /// <summary>The path exactly as stored (PAX <c>path</c> or GNU long name when present); not normalised.</summary>
    public required string Path { get; init; }
    public required TarEntryType Type { get; init; }
    /// <summary>Permission bits including setuid, setgid and sticky.</summary>
    public int Mode { get; init; }
    public int Uid { get; init; }
    public int Gid { get; init; }
    public string? UserName { get; init; }
    public string? GroupName { get; init; }
    /// <summary>Bytes of content that follow the header (0 for every type but <see cref="TarEntryType.Regular"/>).</summary>
    public long Size { get; init; }
    /// <summary>Unix seconds, rounded down when PAX gives a fraction.</summary>
    public long MTime { get; init; }
    /// <summary>Symlink target, or for a hardlink the archive path of the member it links to.</summary>
    public string? LinkName { get; init; }
    public int DevMajor { get; init; }
    public int DevMinor { get; init; }
    /// <summary>Extended attributes sorted by name (ordinal); values are the raw bytes.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>> Xattrs { get; init; } = [];
    /// <summary>Byte offset of the member's own header in the (uncompressed) archive.</summary>
    public long HeaderOffset { get; init; }
    /// <summary>Byte offset of the member's content in the archive (where reading it in place starts).</summary>
    public long DataOffset { get; init; }
    /// <summary>The member's content, limited to <see cref="Size"/> bytes, forward-only.</summary>
    public required Stream Content { get; init; }
}

/// <summary>
/// A forward-only tar reader for ustar, PAX and GNU archives that never holds member content in
/// memory. We do not use System.Formats.Tar because it surfaces PAX values as strings, and binary
/// xattrs (<c>SCHILY.xattr.security.capability</c>) would not survive the UTF-8 round trip.
/// <para>
/// Type rules: '0', '\0' and '7' (contiguous) are regular files; 'V' (GNU volume label) is
/// skipped; GNU sparse ('S' or PAX <c>GNU.sparse.*</c>), multi-volume ('M') and every other
/// unknown type are refused, since writing them as regular files would silently produce wrong
/// content. Header-only types (links, dirs, devices, fifos) never have content blocks, whatever
/// their size field says (as Go's archive/tar reads them). An archive may end with two zero
/// blocks, one zero block then EOF, or EOF right at a header boundary.
/// </para>
/// </summary>
public sealed class TarReader : IDisposable
{
    private const int Block = 512;
    // Extension headers are the only thing we buffer; a bound keeps a hostile archive from
    // making us allocate gigabytes. Xattr values are at most 64 KiB each on Linux.
    private const long MaxExtensionHeader = 16 << 20;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly string _description;
    private readonly byte[] _header = new byte[Block];
    private readonly Dictionary<string, byte[]> _global = new(StringComparer.Ordinal);
    private long _position;
    private EntryStream? _current;
    private bool _done;

    /// <param name="description">Names the archive in error messages, e.g. "layer sha256:…".</param>
    public TarReader(Stream stream, string description, bool leaveOpen = false)
    {
        _stream = stream;
        _description = description;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Bytes consumed from the underlying stream so far.</summary>
    public long Position => _position;

    /// <summary>Moves to the next member, skipping whatever of the previous one was not read; null at the end.</summary>
    public TarEntry? Next()
    {
        if (_done) return null;
        if (_current != null)
        {
            _current.SkipRest();
            _current = null;
        }

        Dictionary<string, byte[]>? pax = null;
        string? gnuLongName = null, gnuLongLink = null;
        while (true)
        {
            long headerOffset = _position;
            if (!ReadHeader(headerOffset))
            {
                _done = true;
                return null;
            }
            byte type = _header[156];
            // Lenient here: when a long name follows, this field may be cut mid-character.
            string shortName = Lenient(CField(0, 100));
            long size = ParseNumber(124, 12, "size", shortName);
            if (size < 0) throw Corrupt($"negative size in header of '{shortName}'");

            switch (type)
            {
                case (byte)'x':
                    pax ??= new Dictionary<string, byte[]>(StringComparer.Ordinal);
                    ParsePax(ReadExtension(size, shortName, "PAX header"), pax, shortName, isGlobal: false);
                    continue;
                case (byte)'g':
                    ParsePax(ReadExtension(size, shortName, "PAX global header"), _global, shortName, isGlobal: true);
                    continue;
                case (byte)'L':
                    gnuLongName = CString(ReadExtension(size, shortName, "GNU long name"), shortName);
                    continue;
                case (byte)'K':
                    gnuLongLink = CString(ReadExtension(size, shortName, "GNU long link name"), shortName);
                    continue;
                case (byte)'V':
                    SkipBytes(Padded(size), shortName);
                    pax = null;
                    gnuLongName = gnuLongLink = null;
                    continue;
            }

            return MakeEntry(type, size, headerOffset, shortName, pax, gnuLongName, gnuLongLink);
        }
    }

    private TarEntry MakeEntry(byte type, long size, long headerOffset, string shortName,
        Dictionary<string, byte[]>? pax, string? gnuLongName, string? gnuLongLink)
    {
        // Per-entry PAX records override global ones; an empty per-entry value deletes the key,
        // except for an xattr, where empty is a legitimate value.
        var merged = new Dictionary<string, byte[]>(_global, StringComparer.Ordinal);
        if (pax != null)
            foreach (var (k, v) in pax)
                if (v.Length == 0 && !IsXattrKey(k)) merged.Remove(k);
                else merged[k] = v;

        string path;
        if (merged.TryGetValue("path", out var paxPath)) path = Utf8(paxPath, "path", shortName);
        else if (gnuLongName != null) path = gnuLongName;
        else
        {
            path = HeaderString(0, 100, headerOffset);
            bool isGnu = _header.AsSpan(257, 8).SequenceEqual("ustar  \0"u8);
            if (!isGnu && _header.AsSpan(257, 5).SequenceEqual("ustar"u8) && _header[345] != 0)
                path = HeaderString(345, 155, headerOffset) + "/" + path;
        }

        if (merged.Keys.Any(k => k.StartsWith("GNU.sparse.", StringComparison.Ordinal)))
            throw Corrupt($"entry '{path}' is a GNU sparse file, which is not supported");

        TarEntryType entryType = type switch
        {
            (byte)'0' or 0 or (byte)'7' => TarEntryType.Regular,
            (byte)'1' => TarEntryType.Hardlink,
            (byte)'2' => TarEntryType.Symlink,
            (byte)'3' => TarEntryType.CharDevice,
            (byte)'4' => TarEntryType.BlockDevice,
            (byte)'5' => TarEntryType.Directory,
            (byte)'6' => TarEntryType.Fifo,
            (byte)'S' => throw Corrupt($"entry '{path}' is a GNU sparse file, which is not supported"),
            _ => throw Corrupt($"entry '{path}' has unsupported tar type {TypeName(type)}"),
        };
        // Old (pre-POSIX) archives mark directories only by a trailing slash on a regular entry.
        if (entryType == TarEntryType.Regular && type == 0 && path.EndsWith('/')) entryType = TarEntryType.Directory;

        string? link = null;
        if (entryType is TarEntryType.Hardlink or TarEntryType.Symlink)
        {
            if (merged.TryGetValue("linkpath", out var paxLink)) link = Utf8(paxLink, "linkpath", path);
            else if (gnuLongLink != null) link = gnuLongLink;
            else if (_header[157] != 0) link = HeaderString(157, 100, headerOffset);
        }

        if (merged.TryGetValue("size", out var paxSize)) size = PaxLong(paxSize, "size", path);
        if (size < 0) throw Corrupt($"negative size for '{path}'");
        long dataSize = entryType == TarEntryType.Regular ? size : 0;

        int uid = merged.TryGetValue("uid", out var paxUid) ? Id(PaxLong(paxUid, "uid", path), "uid", path) : Id(ParseNumber(108, 8, "uid", path), "uid", path);
        int gid = merged.TryGetValue("gid", out var paxGid) ? Id(PaxLong(paxGid, "gid", path), "gid", path) : Id(ParseNumber(116, 8, "gid", path), "gid", path);
        long mtime = merged.TryGetValue("mtime", out var paxMtime) ? PaxTime(paxMtime, path) : ParseNumber(136, 12, "mtime", path);
        int mode = (int)(ParseNumber(100, 8, "mode", path) & 0xFFF);

        int major = 0, minor = 0;
        if (entryType is TarEntryType.CharDevice or TarEntryType.BlockDevice)
        {
            major = Id(merged.TryGetValue("SCHILY.devmajor", out var m) ? PaxLong(m, "SCHILY.devmajor", path) : ParseNumber(329, 8, "devmajor", path), "devmajor", path);
            minor = Id(merged.TryGetValue("SCHILY.devminor", out var n) ? PaxLong(n, "SCHILY.devminor", path) : ParseNumber(337, 8, "devminor", path), "devminor", path);
        }

        // Owner names are informational only: never fail an archive over their encoding.
        string? uname = merged.TryGetValue("uname", out var u) ? Lenient(u) : NullIfEmpty(Lenient(CField(265, 32)));
        string? gname = merged.TryGetValue("gname", out var g) ? Lenient(g) : NullIfEmpty(Lenient(CField(297, 32)));

        var xattrs = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (k, v) in merged)
        {
            if (k.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                xattrs[k["SCHILY.xattr.".Length..]] = v;
        }
        // libarchive writes its own form (URL-encoded name, base64 value) and may also write the
        // SCHILY form; the SCHILY one wins when both exist.
        foreach (var (k, v) in merged)
        {
            if (!k.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal)) continue;
            var name = Uri.UnescapeDataString(k["LIBARCHIVE.xattr.".Length..]);
            if (xattrs.ContainsKey(name)) continue;
            try
            {
                // libarchive omits the base64 padding.
                var b64 = Encoding.ASCII.GetString(v);
                if (b64.Length % 4 != 0) b64 += new string('=', 4 - b64.Length % 4);
                xattrs[name] = Convert.FromBase64String(b64);
            }
            catch (FormatException)
            {
                throw Corrupt($"entry '{path}' has an invalid base64 value for PAX record {k}");
            }
        }

        if (entryType is TarEntryType.Hardlink or TarEntryType.Symlink && string.IsNullOrEmpty(link))
            throw Corrupt($"entry '{path}' is a {(entryType == TarEntryType.Hardlink ? "hardlink" : "symlink")} without a target");

        _current = new EntryStream(this, dataSize, path);
        return new TarEntry
        {
            Path = path,
            Type = entryType,
            Mode = mode,
            Uid = uid,
            Gid = gid,
            UserName = uname,
            GroupName = gname,
            Size = dataSize,
            MTime = mtime,
            LinkName = entryType is TarEntryType.Hardlink or TarEntryType.Symlink ? link : null,
            DevMajor = major,
            DevMinor = minor,
            Xattrs = xattrs.ToList(),
            HeaderOffset = headerOffset,
            DataOffset = _position,
            Content = _current,
        };
    }

    /// <summary>Reads the next header block; false at the end of the archive.</summary>
    private bool ReadHeader(long offset)
    {
        int got = ReadUpTo(_header, 0, Block);
        if (got == 0) return false;
        if (got < Block) throw Corrupt($"truncated tar (header at offset {offset} ends early)");
        if (IsZero(_header))
        {
            // A lone zero block followed by more members is how corrupt archives look; a real end
            // is a second zero block or the end of the stream.
            var second = new byte[Block];
            got = ReadUpTo(second, 0, Block);
            if (got == 0 || (got == Block && IsZero(second))) return false;
            throw Corrupt($"corrupt tar (zero block at offset {offset} followed by data)");
        }
        VerifyChecksum(offset);
        return true;
    }

    private void VerifyChecksum(long offset)
    {
        long stored;
        try
        {
            stored = ParseOctal(_header.AsSpan(148, 8));
        }
        catch (FormatException)
        {
            throw Corrupt($"not a tar archive or corrupt tar header at offset {offset} (unreadable checksum field)");
        }
        long unsigned = 0, signed = 0;
        for (int i = 0; i < Block; i++)
        {
            byte b = i is >= 148 and < 156 ? (byte)' ' : _header[i];
            unsigned += b;
            signed += (sbyte)b;
        }
        // Some historic writers summed signed chars; both sums are accepted, as GNU tar does.
        if (stored != unsigned && stored != signed)
            throw Corrupt($"bad tar header checksum at offset {offset} (corrupt or not a tar archive)");
    }

    private byte[] ReadExtension(long size, string name, string what)
    {
        if (size > MaxExtensionHeader) throw Corrupt($"{what} for '{name}' is implausibly large ({size} bytes)");
        var data = new byte[size];
        if (ReadUpTo(data, 0, (int)size) < size) throw Corrupt($"truncated tar ({what} for '{name}' ends early)");
        SkipBytes(Padded(size) - size, name);
        return data;
    }

    private void ParsePax(byte[] data, Dictionary<string, byte[]> into, string name, bool isGlobal)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            // Records are "<len> <key>=<value>\n", len counting the whole record.
            int space = Array.IndexOf(data, (byte)' ', pos);
            if (space < 0) break;
            int len = 0;
            for (int i = pos; i < space; i++)
            {
                if (data[i] is < (byte)'0' or > (byte)'9' || len > 100_000_000)
                    throw Corrupt($"malformed PAX record in header of '{name}'");
                len = len * 10 + (data[i] - '0');
            }
            if (len <= space - pos + 1 || pos + len > data.Length || data[pos + len - 1] != '\n')
                throw Corrupt($"malformed PAX record in header of '{name}'");
            int eq = Array.IndexOf(data, (byte)'=', space + 1, pos + len - space - 1);
            if (eq < 0) throw Corrupt($"malformed PAX record in header of '{name}'");
            var key = Utf8(data.AsSpan(space + 1, eq - space - 1).ToArray(), "PAX key", name);
            var value = data.AsSpan(eq + 1, pos + len - 1 - eq - 1).ToArray();
            if (isGlobal && value.Length == 0 && !IsXattrKey(key)) into.Remove(key);
            else into[key] = value;
            pos += len;
        }
    }

    private long ParseNumber(int offset, int length, string field, string entry)
    {
        var f = _header.AsSpan(offset, length);
        if ((f[0] & 0x80) != 0)
        {
            // GNU base-256: big-endian two's complement, the marker bit dropped for positives.
            bool negative = f[0] == 0xff;
            long v = negative ? -1 : f[0] & 0x7f;
            for (int i = 1; i < f.Length; i++)
            {
                if (!negative && v > (long.MaxValue >> 8)) throw Corrupt($"{field} of '{entry}' is out of range");
                v = (v << 8) | f[i];
            }
            return v;
        }
        try
        {
            return ParseOctal(f);
        }
        catch (FormatException)
        {
            throw Corrupt($"invalid {field} field in header of '{entry}'");
        }
    }

    private static long ParseOctal(ReadOnlySpan<byte> f)
    {
        int i = 0;
        while (i < f.Length && f[i] is (byte)' ' or 0) i++;
        long v = 0;
        for (; i < f.Length && f[i] is >= (byte)'0' and <= (byte)'7'; i++)
        {
            if (v > (long.MaxValue >> 3)) throw new FormatException();
            v = (v << 3) | (long)(f[i] - '0');
        }
        for (; i < f.Length; i++)
            if (f[i] is not ((byte)' ' or 0)) throw new FormatException();
        return v;
    }

    private long PaxLong(byte[] value, string key, string entry)
    {
        if (!long.TryParse(Encoding.ASCII.GetString(value), System.Globalization.NumberStyles.AllowLeadingSign,
                System.Globalization.CultureInfo.InvariantCulture, out var v))
            throw Corrupt($"invalid PAX {key} '{Encoding.ASCII.GetString(value)}' for '{entry}'");
        return v;
    }

    private long PaxTime(byte[] value, string entry)
    {
        var s = Encoding.ASCII.GetString(value);
        if (!decimal.TryParse(s, System.Globalization.NumberStyles.AllowLeadingSign | System.Globalization.NumberStyles.AllowDecimalPoint,
                System.Globalization.CultureInfo.InvariantCulture, out var d))
            throw Corrupt($"invalid PAX mtime '{s}' for '{entry}'");
        return (long)decimal.Floor(d);
    }

    private int Id(long v, string field, string entry)
    {
        // Refusing beats wrapping: a uid of -1 means "leave unchanged" to chown.
        if (v is < 0 or > int.MaxValue) throw Corrupt($"{field} {v} of '{entry}' is out of range");
        return (int)v;
    }

    private string HeaderString(int offset, int length, long headerOffset) =>
        Utf8(CField(offset, length), "name", $"header at offset {headerOffset}");

    private byte[] CField(int offset, int length)
    {
        var f = _header.AsSpan(offset, length);
        int nul = f.IndexOf((byte)0);
        return (nul >= 0 ? f[..nul] : f).ToArray();
    }

    private static string Lenient(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    private string CString(byte[] data, string name)
    {
        int nul = Array.IndexOf(data, (byte)0);
        return Utf8(nul >= 0 ? data[..nul] : data, "long name", name);
    }

    /// <summary>Names are bytes: decoded losslessly (see <see cref="Posix.FileNames"/>), whatever hdrcharset says.</summary>
    private static string Utf8(byte[] bytes, string what, string entry) => Posix.FileNames.Decode(bytes);

    private static bool IsXattrKey(string key) =>
        key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal) || key.StartsWith("LIBARCHIVE.xattr.", StringComparison.Ordinal);

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;

    private static string TypeName(byte t) => t is >= 0x20 and < 0x7f ? $"'{(char)t}'" : $"0x{t:x2}";

    private static long Padded(long size) => (size + Block - 1) / Block * Block;

    private static bool IsZero(byte[] block) => block.AsSpan().IndexOfAnyExcept((byte)0) < 0;

    private TreechunkException Corrupt(string what) => new($"{_description}: {Posix.FileNames.Display(what)}");

    /// <summary>Reads until <paramref name="count"/> bytes or the end of the stream.</summary>
    private int ReadUpTo(byte[] buffer, int offset, int count)
    {
        int total = 0;
        while (total < count)
        {
            int n = _stream.Read(buffer, offset + total, count - total);
            if (n == 0) break;
            total += n;
        }
        _position += total;
        return total;
    }

    private void SkipBytes(long count, string entry)
    {
        if (count == 0) return;
        if (_stream.CanSeek)
        {
            // Reading an archive in place (an oci-archive's index): skip content without reading it.
            if (_stream.Position + count > _stream.Length) throw Corrupt($"truncated tar (entry '{entry}' ends early)");
            _stream.Seek(count, SeekOrigin.Current);
            _position += count;
            return;
        }
        var buf = ArrayPool<byte>.Shared.Rent(64 << 10);
        try
        {
            while (count > 0)
            {
                int n = _stream.Read(buf, 0, (int)Math.Min(buf.Length, count));
                if (n == 0) throw Corrupt($"truncated tar (entry '{entry}' ends early)");
                count -= n;
                _position += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    public void Dispose()
    {
        if (!_leaveOpen) _stream.Dispose();
    }

    /// <summary>The content of the current member: a window over the archive that ends at its size.</summary>
    private sealed class EntryStream(TarReader owner, long size, string entry) : IO.ReadOnlyStream
    {
        private long _remaining = -1;
        private bool _finished;

        private long Remaining => _remaining < 0 ? size : _remaining;

        public override int Read(Span<byte> buffer)
        {
            if (_finished) throw new InvalidOperationException($"the content of tar entry '{entry}' is no longer available (the reader moved on)");
            long remaining = Remaining;
            if (remaining == 0 || buffer.Length == 0) return 0;
            if (buffer.Length > remaining) buffer = buffer[..(int)remaining];
            int n = owner._stream.Read(buffer);
            if (n == 0) throw owner.Corrupt($"truncated tar (entry '{entry}' ends early)");
            _remaining = remaining - n;
            owner._position += n;
            return n;
        }

        internal void SkipRest()
        {
            if (_finished) return;
            owner.SkipBytes(Remaining + (Padded(size) - size), entry);
            _remaining = 0;
            _finished = true;
        }

        public override long Length => size;
        public override long Position { get => size - Remaining; set => throw new NotSupportedException(); }
    }
}
