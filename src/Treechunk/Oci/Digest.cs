using System.Security.Cryptography;
using Treechunk.IO;

namespace Treechunk.Oci;

public static class Digest
{
    public static string Sha256(ReadOnlySpan<byte> data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>The digest of a stream's remaining bytes, read in pieces.</summary>
    public static string Sha256(Stream data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    /// <summary>The hex part of a "sha256:..." digest, validated so it can be used as a file name.</summary>
    public static string Hex(string digest)
    {
        if (!digest.StartsWith("sha256:", StringComparison.Ordinal) || digest.Length != 71 ||
            !digest.AsSpan(7).ContainsOnlyHexLower())
            throw new TreechunkException($"invalid or unsupported digest '{digest}' (expected sha256:<64 lowercase hex>)");
        return digest[7..];
    }

    private static bool ContainsOnlyHexLower(this ReadOnlySpan<char> s)
    {
        foreach (var c in s)
            if (!(c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        return true;
    }
}

/// <summary>A write-through stream that hashes and counts what passes, so a blob is digested while it is written.</summary>
public sealed class HashingStream : WriteOnlyStream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    public long BytesWritten { get; private set; }

    public HashingStream(Stream inner, bool leaveOpen = false)
    {
        _inner = inner;
        _leaveOpen = leaveOpen;
    }

    public string Digest() => "sha256:" + Convert.ToHexStringLower(_hash.GetCurrentHash());

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        BytesWritten += buffer.Length;
        _inner.Write(buffer);
    }

    public override void Flush() => _inner.Flush();
    public override long Length => BytesWritten;
    public override long Position { get => BytesWritten; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!_leaveOpen) _inner.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>A read-through stream that hashes and counts what is read.</summary>
public sealed class HashingReadStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    public long BytesRead { get; private set; }

    public HashingReadStream(Stream inner) => _inner = inner;

    public string Digest() => "sha256:" + Convert.ToHexStringLower(_hash.GetCurrentHash());

    public override int Read(Span<byte> buffer)
    {
        int n = _inner.Read(buffer);
        _hash.AppendData(buffer[..n]);
        BytesRead += n;
        return n;
    }

    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing) { _hash.Dispose(); _inner.Dispose(); }
        base.Dispose(disposing);
    }
}
