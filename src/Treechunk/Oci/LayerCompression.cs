using System.IO.Compression;

namespace Treechunk.Oci;

public enum Compression { Gzip, Zstd, None }

public static class LayerCompression
{
    public static Compression Parse(string text) => text.ToLowerInvariant() switch
    {
        "gzip" => Compression.Gzip,
        "zstd" => Compression.Zstd,
        "none" or "uncompressed" => Compression.None,
        _ => throw new TreechunkException($"unknown compression '{text}' (expected gzip, zstd or none)"),
    };

    public static string MediaType(Compression c) => c switch
    {
        Compression.Gzip => MediaTypes.LayerGzip,
        Compression.Zstd => MediaTypes.LayerZstd,
        _ => MediaTypes.Layer,
    };

    public static int DefaultLevel(Compression c) => c switch { Compression.Gzip => 6, Compression.Zstd => 3, _ => 0 };

    public static void ValidateLevel(Compression c, int level)
    {
        var (lo, hi) = c switch { Compression.Gzip => (1, 9), Compression.Zstd => (1, 22), _ => (0, 0) };
        if (c == Compression.None) return;
        if (level < lo || level > hi)
            throw new TreechunkException($"compression level {level} is out of range for {c.ToString().ToLowerInvariant()} ({lo}-{hi})");
    }

    /// <summary>A compressing write stream over <paramref name="inner"/> (left open).</summary>
    public static Stream Compress(Stream inner, Compression c, int level, int zstdWorkers = 0) => c switch
    {
        Compression.Gzip => new GZipStream(inner, new ZLibCompressionOptions { CompressionLevel = level }, leaveOpen: true),
        Compression.Zstd => Zstd.Compress(inner, level, zstdWorkers),
        _ => new NonClosingStream(inner),
    };

    /// <summary>A decompressing read stream for a layer of the given media type.</summary>
    public static Stream Decompress(Stream inner, string mediaType, bool leaveOpen = false)
    {
        if (mediaType.EndsWith("+gzip", StringComparison.Ordinal) || mediaType.EndsWith(".tar.gzip", StringComparison.Ordinal))
            return new GZipStream(inner, CompressionMode.Decompress, leaveOpen);
        if (mediaType.EndsWith("+zstd", StringComparison.Ordinal) || mediaType.EndsWith(".tar.zstd", StringComparison.Ordinal))
            return new ZstdSharp.DecompressionStream(inner, leaveOpen: leaveOpen);
        if (mediaType.EndsWith(".tar", StringComparison.Ordinal) || mediaType == "application/vnd.docker.image.rootfs.diff.tar")
            return leaveOpen ? new NonClosingReadStream(inner) : inner;
        throw new TreechunkException($"unsupported layer media type '{mediaType}'");
    }
}

/// <summary>Passes writes through but leaves the inner stream open on dispose.</summary>
internal sealed class NonClosingStream(Stream inner) : Stream
{
    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Flush() => inner.Flush();
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>Passes reads through but leaves the inner stream open on dispose.</summary>
internal sealed class NonClosingReadStream(Stream inner) : Stream
{
    public override int Read(Span<byte> buffer) => inner.Read(buffer);
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
