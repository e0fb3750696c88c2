using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Treechunk.Posix;

/// <summary>
/// Linux file names are bytes, .NET strings are UTF-16. This is the one lossless codec between
/// them, used for every syscall and every tar name: valid UTF-8 decodes as usual, and each byte
/// that is not part of valid UTF-8 becomes the lone surrogate U+DC80..U+DCFF (Python's
/// "surrogateescape"), which encodes back to the same byte. So any name read from disk or from a
/// tar is written back byte for byte, and names that are valid UTF-8 (nearly all) are ordinary
/// strings. No valid UTF-8 text decodes to a lone surrogate, so the mapping is one to one.
/// </summary>
public static class FileNames
{
    private const char EscapeBase = '\uDC00';

    /// <summary>Bytes to a name: UTF-8, with every byte that is not valid UTF-8 escaped as U+DC80..U+DCFF.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes)) return Encoding.UTF8.GetString(bytes);
        var sb = new StringBuilder(bytes.Length);
        while (!bytes.IsEmpty)
        {
            var status = Rune.DecodeFromUtf8(bytes, out var rune, out int consumed);
            if (status == OperationStatus.Done)
            {
                sb.Append(rune.ToString());
                bytes = bytes[consumed..];
            }
            else
            {
                // One byte at a time: the rest of an invalid sequence may start a valid one.
                sb.Append((char)(EscapeBase + bytes[0]));
                bytes = bytes[1..];
            }
        }
        return sb.ToString();
    }

    /// <summary>True when the name came from bytes that are not valid UTF-8.</summary>
    public static bool HasEscapedBytes(string name) => name.AsSpan().IndexOfAnyInRange('\uDC80', '\uDCFF') >= 0;

    /// <summary>A name back to its bytes; the exact inverse of <see cref="Decode"/>.</summary>
    public static byte[] Encode(string name) => Encode(name, nulTerminated: false);

    /// <summary>The bytes plus a terminating NUL, as syscalls take them.</summary>
    public static byte[] EncodeZ(string name) => Encode(name, nulTerminated: true);

    private static byte[] Encode(string name, bool nulTerminated)
    {
        int extra = nulTerminated ? 1 : 0;
        if (name.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0)
        {
            var bytes = new byte[Encoding.UTF8.GetByteCount(name) + extra];
            Encoding.UTF8.GetBytes(name, bytes);
            return bytes;
        }
        var buffer = new ArrayBufferWriter<byte>(name.Length + 8);
        Span<byte> scratch = stackalloc byte[4];
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (c is >= '\uDC80' and <= '\uDCFF')
            {
                buffer.Write([(byte)(c - EscapeBase)]);
                continue;
            }
            if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1]))
            {
                int n = new Rune(c, name[i + 1]).EncodeToUtf8(scratch);
                buffer.Write(scratch[..n]);
                i++;
                continue;
            }
            if (char.IsSurrogate(c))
                throw new TreechunkException($"name '{Display(name)}' holds a lone UTF-16 surrogate that no file name can have");
            buffer.Write(scratch[..new Rune(c).EncodeToUtf8(scratch)]);
        }
        if (nulTerminated) buffer.Write([(byte)0]);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// A name for messages: printable text as is; escaped bytes, control characters and other
    /// unprintable characters as <c>\xNN</c> (their UTF-8 bytes), so a message is one readable
    /// line that says exactly which bytes the name has.
    /// </summary>
    public static string Display(string name)
    {
        bool plain = true;
        foreach (var c in name)
            if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\u200E' or '\u200F' or '\u202E')
            {
                plain = false;
                break;
            }
        if (plain) return name;
        var sb = new StringBuilder(name.Length + 8);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (c is >= '\uDC80' and <= '\uDCFF') { sb.Append($"\\x{c - EscapeBase:x2}"); continue; }
            if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1]))
            {
                sb.Append(c).Append(name[i + 1]);
                i++;
                continue;
            }
            if (char.IsControl(c) || char.IsSurrogate(c) || c is '\u2028' or '\u2029' or '\u200E' or '\u200F' or '\u202E')
            {
                foreach (var b in Encoding.UTF8.GetBytes(c.ToString())) sb.Append($"\\x{b:x2}");
                continue;
            }
            sb.Append(c);
        }
        return sb.ToString();
    }
}
