using System.Buffers.Binary;
using System.Text;

namespace Treechunk.Ostree;

/// <summary>A value of type 'v': the contained value keeps its own type.</summary>
public sealed record Variant(GVariantType Type, object Value)
{
    public Variant(string signature, object value) : this(GVariantType.Parse(signature), value) { }
}

/// <summary>A value of a maybe type: <see cref="Nothing"/> or Just(<see cref="Value"/>).</summary>
public sealed record Maybe(object? Value, bool HasValue)
{
    public static readonly Maybe Nothing = new(null, false);
    public static Maybe Just(object value) => new(value, true);
}

/// <summary>
/// GVariant serialisation (glib's gvariant-serialiser rules) for the types OSTree uses and the
/// rest of the type system. Values map to .NET as: y byte, b bool, n short, q ushort, i/h int,
/// u uint, x long, t ulong, d double, s/o/g string, v <see cref="Variant"/>, ay byte[],
/// other arrays IReadOnlyList&lt;object&gt;, m <see cref="Maybe"/>, tuples object[], dict entries
/// KeyValuePair&lt;object, object&gt;. Integers are little-endian as on the wire; OSTree's
/// big-endian fields are swapped by the OSTree layer, not here. Writing always gives normal form;
/// reading rejects anything malformed with a <see cref="GVariantException"/>.
/// </summary>
public static class GVariant
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public static byte[] Serialize(string signature, object value) => Serialize(TypeOf(signature), value);

    // The object formats' few signatures are parsed once, not once per object (thousands per
    // commit). Bounded, so signatures that come from data cannot grow it without limit.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, GVariantType> KnownTypes = new(StringComparer.Ordinal);

    private static GVariantType TypeOf(string signature)
    {
        if (KnownTypes.TryGetValue(signature, out var type)) return type;
        type = GVariantType.Parse(signature);
        if (KnownTypes.Count < 64) KnownTypes.TryAdd(signature, type);
        return type;
    }

    public static byte[] Serialize(GVariantType type, object value)
    {
        var buffer = new MemoryStream();
        Write(buffer, type, value);
        return buffer.ToArray();
    }

    public static object Parse(string signature, ReadOnlySpan<byte> data) => Parse(TypeOf(signature), data);

    public static object Parse(GVariantType type, ReadOnlySpan<byte> data) => Read(type, data, 0);

    // ---------------------------------------------------------------- writing

    private static void Pad(MemoryStream s, long start, int alignment)
    {
        while ((s.Length - start) % alignment != 0) s.WriteByte(0);
    }

    private static void Write(MemoryStream s, GVariantType t, object value)
    {
        Span<byte> b = stackalloc byte[8];
        switch (t.Kind)
        {
            case 'y': s.WriteByte(Convert.ToByte(value)); return;
            case 'b': s.WriteByte((bool)value ? (byte)1 : (byte)0); return;
            case 'n': BinaryPrimitives.WriteInt16LittleEndian(b, (short)value); s.Write(b[..2]); return;
            case 'q': BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)value); s.Write(b[..2]); return;
            case 'i' or 'h': BinaryPrimitives.WriteInt32LittleEndian(b, (int)value); s.Write(b[..4]); return;
            case 'u': BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)value); s.Write(b[..4]); return;
            case 'x': BinaryPrimitives.WriteInt64LittleEndian(b, (long)value); s.Write(b[..8]); return;
            case 't': BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)value); s.Write(b[..8]); return;
            case 'd': BinaryPrimitives.WriteDoubleLittleEndian(b, (double)value); s.Write(b[..8]); return;
            case 's' or 'o' or 'g':
            {
                var str = (string)value;
                if (str.Contains('\0')) throw new GVariantException("GVariant strings cannot contain NUL");
                try
                {
                    s.Write(StrictUtf8.GetBytes(str));
                }
                catch (EncoderFallbackException)
                {
                    throw new GVariantException("GVariant strings must be valid UTF-8");
                }
                s.WriteByte(0);
                return;
            }
            case 'v':
            {
                var v = (Variant)value;
                long start = s.Length;
                Write(s, v.Type, v.Value);
                s.WriteByte(0);
                s.Write(Encoding.ASCII.GetBytes(v.Type.Signature));
                _ = start;
                return;
            }
            case 'm':
            {
                var m = (Maybe)value;
                if (!m.HasValue) return;
                Write(s, t.Element!, m.Value!);
                if (!t.Element!.IsFixedSize) s.WriteByte(0);
                return;
            }
            case 'a':
                WriteArray(s, t.Element!, value);
                return;
            case '(':
            {
                var items = (IReadOnlyList<object>)value;
                if (items.Count != t.Members.Count) throw new GVariantException($"tuple {t} needs {t.Members.Count} values, got {items.Count}");
                WriteTuple(s, t, items);
                return;
            }
            case '{':
            {
                var kv = (KeyValuePair<object, object>)value;
                WriteTuple(s, t, [kv.Key, kv.Value]);
                return;
            }
        }
        throw new GVariantException($"cannot serialise type {t}");
    }

    private static void WriteArray(MemoryStream s, GVariantType element, object value)
    {
        if (element.Kind == 'y')
        {
            s.Write((byte[])value);
            return;
        }
        var items = (System.Collections.IList)value;
        long start = s.Length;
        if (element.IsFixedSize)
        {
            foreach (var item in items) Write(s, element, item!);
            return;
        }
        var ends = new List<long>(items.Count);
        foreach (var item in items)
        {
            Pad(s, start, element.Alignment);
            Write(s, element, item!);
            ends.Add(s.Length - start);
        }
        WriteOffsets(s, start, ends);
    }

    private static void WriteTuple(MemoryStream s, GVariantType t, IReadOnlyList<object> items)
    {
        long start = s.Length;
        if (t.Members.Count == 0) { s.WriteByte(0); return; }
        var ends = new List<long>();
        for (int i = 0; i < t.Members.Count; i++)
        {
            var m = t.Members[i];
            Pad(s, start, m.Alignment);
            Write(s, m, items[i]);
            if (!m.IsFixedSize && i < t.Members.Count - 1) ends.Add(s.Length - start);
        }
        if (t.IsFixedSize)
        {
            Pad(s, start, t.Alignment);
            return;
        }
        ends.Reverse();
        WriteOffsets(s, start, ends);
    }

    private static void WriteOffsets(MemoryStream s, long start, List<long> offsets)
    {
        long body = s.Length - start;
        int width = OffsetWidth(body, offsets.Count);
        Span<byte> b = stackalloc byte[8];
        foreach (var o in offsets)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b, (ulong)o);
            s.Write(b[..width]);
        }
    }

    /// <summary>The smallest offset width whose range holds the container's total size including its offsets.</summary>
    private static int OffsetWidth(long body, int count)
    {
        if (count == 0) return 1;
        if (body + count <= 0xFF) return 1;
        if (body + 2L * count <= 0xFFFF) return 2;
        if (body + 4L * count <= 0xFFFFFFFFL) return 4;
        return 8;
    }

    private static int WidthForSize(int size) => size <= 0xFF ? 1 : size <= 0xFFFF ? 2 : 4;

    // ---------------------------------------------------------------- reading

    private static object Read(GVariantType t, ReadOnlySpan<byte> d, int depth)
    {
        if (depth > 128) throw new GVariantException("GVariant value nests too deeply");
        if (t.IsFixedSize && d.Length != t.FixedSize)
            throw new GVariantException($"GVariant {t}: {d.Length} bytes where {t.FixedSize} are required");
        switch (t.Kind)
        {
            case 'y': return d[0];
            case 'b': return d[0] != 0;
            case 'n': return BinaryPrimitives.ReadInt16LittleEndian(d);
            case 'q': return BinaryPrimitives.ReadUInt16LittleEndian(d);
            case 'i' or 'h': return BinaryPrimitives.ReadInt32LittleEndian(d);
            case 'u': return BinaryPrimitives.ReadUInt32LittleEndian(d);
            case 'x': return BinaryPrimitives.ReadInt64LittleEndian(d);
            case 't': return BinaryPrimitives.ReadUInt64LittleEndian(d);
            case 'd': return BinaryPrimitives.ReadDoubleLittleEndian(d);
            case 's' or 'o' or 'g': return ReadString(d);
            case 'v': return ReadVariant(d, depth);
            case 'm': return ReadMaybe(t, d, depth);
            case 'a': return ReadArray(t.Element!, d, depth);
            case '(': return ReadTuple(t, d, depth);
            case '{':
            {
                var items = ReadTuple(t, d, depth);
                return new KeyValuePair<object, object>(items[0], items[1]);
            }
        }
        throw new GVariantException($"cannot parse type {t}");
    }

    private static string ReadString(ReadOnlySpan<byte> d)
    {
        if (d.Length == 0 || d[^1] != 0) throw new GVariantException("GVariant string is not NUL-terminated");
        var body = d[..^1];
        if (body.Contains((byte)0)) throw new GVariantException("GVariant string contains NUL");
        try
        {
            return StrictUtf8.GetString(body);
        }
        catch (DecoderFallbackException)
        {
            throw new GVariantException("GVariant string is not valid UTF-8");
        }
    }

    private static Variant ReadVariant(ReadOnlySpan<byte> d, int depth)
    {
        int nul = d.LastIndexOf((byte)0);
        if (nul < 0) throw new GVariantException("GVariant variant has no type separator");
        var signature = Encoding.ASCII.GetString(d[(nul + 1)..]);
        if (signature.Length == 0) throw new GVariantException("GVariant variant has an empty type");
        var type = GVariantType.Parse(signature);
        return new Variant(type, Read(type, d[..nul], depth + 1));
    }

    private static Maybe ReadMaybe(GVariantType t, ReadOnlySpan<byte> d, int depth)
    {
        if (d.Length == 0) return Maybe.Nothing;
        var e = t.Element!;
        if (e.IsFixedSize) return Maybe.Just(Read(e, d, depth + 1));
        if (d[^1] != 0) throw new GVariantException($"GVariant {t}: missing trailing zero byte");
        return Maybe.Just(Read(e, d[..^1], depth + 1));
    }

    private static object ReadArray(GVariantType e, ReadOnlySpan<byte> d, int depth)
    {
        if (e.Kind == 'y') return d.ToArray();
        var result = new List<object>();
        if (d.Length == 0) return result;
        if (e.IsFixedSize)
        {
            if (d.Length % e.FixedSize != 0) throw new GVariantException($"GVariant a{e}: {d.Length} bytes is not a multiple of {e.FixedSize}");
            for (int i = 0; i < d.Length; i += e.FixedSize) result.Add(Read(e, d.Slice(i, e.FixedSize), depth + 1));
            return result;
        }
        int w = WidthForSize(d.Length);
        long tableStart = ReadOffset(d, d.Length - w, w);
        if (tableStart > d.Length || (d.Length - tableStart) % w != 0)
            throw new GVariantException($"GVariant a{e}: bad framing offset");
        long count = (d.Length - tableStart) / w;
        long start = 0;
        for (long i = 0; i < count; i++)
        {
            long end = ReadOffset(d, (int)(tableStart + i * w), w);
            start = GVariantType.Align((int)start, e.Alignment);
            if (start > end || end > tableStart) throw new GVariantException($"GVariant a{e}: element {i} has bad framing");
            result.Add(Read(e, d[(int)start..(int)end], depth + 1));
            start = end;
        }
        return result;
    }

    private static object[] ReadTuple(GVariantType t, ReadOnlySpan<byte> d, int depth)
    {
        if (t.Members.Count == 0)
        {
            if (d.Length != 1 || d[0] != 0) throw new GVariantException("GVariant (): must be one zero byte");
            return [];
        }
        int w = WidthForSize(d.Length);
        int framed = 0;
        for (int i = 0; i < t.Members.Count - 1; i++) if (!t.Members[i].IsFixedSize) framed++;
        long bodyEnd = d.Length - (long)framed * w; // framing offsets sit at the end, in reverse order
        if (bodyEnd < 0) throw new GVariantException($"GVariant {t}: missing framing offsets");
        var values = new object[t.Members.Count];
        int offsetIndex = 0;
        long pos = 0;
        for (int i = 0; i < t.Members.Count; i++)
        {
            var m = t.Members[i];
            long start = (pos + m.Alignment - 1) & ~(long)(m.Alignment - 1);
            long end;
            if (m.IsFixedSize) end = start + m.FixedSize;
            else if (i == t.Members.Count - 1) end = bodyEnd;
            else end = ReadOffset(d, (int)(d.Length - (long)(++offsetIndex) * w), w);
            if (start > end || end > bodyEnd) throw new GVariantException($"GVariant {t}: member {i} has bad framing");
            values[i] = Read(m, d[(int)start..(int)end], depth + 1);
            pos = end;
        }
        return values;
    }

    private static long ReadOffset(ReadOnlySpan<byte> d, int at, int w)
    {
        if (at < 0 || at + w > d.Length) throw new GVariantException("GVariant framing offset out of range");
        return w switch
        {
            1 => d[at],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(d[at..]),
            _ => BinaryPrimitives.ReadUInt32LittleEndian(d[at..]),
        };
    }

    // ---------------------------------------------------------------- text form (tests, debugging)

    /// <summary>A canonical text rendering, equal for equal values (used to compare values in tests).</summary>
    public static string Print(GVariantType t, object value) => t.Kind switch
    {
        'b' => (bool)value ? "true" : "false",
        'd' => BitConverter.DoubleToInt64Bits((double)value).ToString("x"),
        's' or 'o' or 'g' => "'" + ((string)value).Replace("\\", "\\\\").Replace("'", "\\'") + "'",
        'v' => "<" + ((Variant)value).Type + ":" + Print(((Variant)value).Type, ((Variant)value).Value) + ">",
        'm' => ((Maybe)value).HasValue ? "just " + Print(t.Element!, ((Maybe)value).Value!) : "nothing",
        'a' when t.Element!.Kind == 'y' => "0x" + Convert.ToHexStringLower((byte[])value),
        'a' => "[" + string.Join(", ", ((System.Collections.IList)value).Cast<object>().Select(v => Print(t.Element!, v))) + "]",
        '(' => "(" + string.Join(", ", ((IReadOnlyList<object>)value).Select((v, i) => Print(t.Members[i], v))) + ")",
        '{' => "{" + Print(t.Members[0], ((KeyValuePair<object, object>)value).Key) + ": " + Print(t.Members[1], ((KeyValuePair<object, object>)value).Value) + "}",
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)!,
    };
}
