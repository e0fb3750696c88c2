using System.Security.Cryptography;
using Treechunk.IO;

namespace Treechunk.Oci;

/// <summary>
/// Reads a blob through, hashing and counting, and checks it against its descriptor: reading past
/// the descriptor's size fails at once, and the end of the stream fails unless size and digest
/// match. Every blob the library reads whole goes through this one check, whatever the transport.
/// </summary>
public sealed class VerifyingStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly Descriptor _expected;
    private readonly string _what;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _read;
    private bool _atEnd;

    /// <param name="what">Names the blob in messages, e.g. "layer blob" or "config".</param>
    public VerifyingStream(Stream inner, Descriptor expected, string what)
    {
        Digest.Hex(expected.Digest);
        _inner = inner;
        _expected = expected;
        _what = what;
    }

    public long BytesRead => _read;

    public override int Read(Span<byte> buffer)
    {
        if (_atEnd) return 0;
        int n = _inner.Read(buffer);
        if (n > 0)
        {
            _hash.AppendData(buffer[..n]);
            _read += n;
            if (_read > _expected.Size) throw Failure(TooLarge());
            return n;
        }
        if (buffer.Length > 0)
        {
            _atEnd = true;
            if (Mismatch() is { } problem) throw Failure(problem);
        }
        return 0;
    }

    /// <summary>
    /// Reads whatever is left and says what is wrong with the blob, or null when it is right.
    /// For callers that met another error first (a decompressor choking on damaged bytes): the
    /// digest is the truer diagnosis.
    /// </summary>
    public string? DrainAndCheck()
    {
        var buffer = new byte[1 << 16];
        try
        {
            while (!_atEnd)
            {
                int n = _inner.Read(buffer);
                if (n == 0) { _atEnd = true; break; }
                _hash.AppendData(buffer.AsSpan(0, n));
                _read += n;
                if (_read > _expected.Size) return TooLarge();
            }
        }
        catch (IOException e)
        {
            return $"cannot read {_what} {_expected.Digest}: {e.Message}";
        }
        return Mismatch();
    }

    private string TooLarge() => $"{_what} {_expected.Digest} is corrupt: it holds more than the {_expected.Size} bytes its descriptor says";

    private string? Mismatch()
    {
        var actual = "sha256:" + Convert.ToHexStringLower(_hash.GetCurrentHash());
        if (_read == _expected.Size && actual == _expected.Digest) return null;
        return $"{_what} {_expected.Digest} is corrupt: its content is {_read} bytes with digest {actual} (expected {_expected.Size} bytes)";
    }

    private static TreechunkException Failure(string problem) => new(problem, ExitCodes.VerificationFailed);

    public override long Length => _expected.Size;
    public override long Position { get => _read; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            _inner.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>Reads a small blob (a manifest, a config) whole through the check.</summary>
    public static byte[] ReadAll(Stream blob, Descriptor expected, string what, long maxSize)
    {
        if (expected.Size > maxSize || expected.Size < 0)
        {
            blob.Dispose();
            throw new TreechunkException($"{what} {expected.Digest} is implausibly large ({expected.Size} bytes; at most {maxSize} are read)");
        }
        using var verifying = new VerifyingStream(blob, expected, what);
        var bytes = new byte[expected.Size];
        int read = 0;
        while (read < bytes.Length)
        {
            int n = verifying.Read(bytes, read, bytes.Length - read);
            if (n == 0) break; // unreachable: a short blob fails the check at its end
            read += n;
        }
        // The end must be reached for the check to run (and a longer blob fails it).
        verifying.ReadByte();
        return bytes;
    }
}
