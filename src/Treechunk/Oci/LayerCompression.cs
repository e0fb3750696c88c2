using System.IO.Compression;
using Treechunk.IO;

namespace Treechunk.Oci;

/// <summary>How layers are compressed; <see cref="ZstdChunked"/> is zstd framed file by file with a table of contents (same media type as zstd).</summary>
public enum Compression { Gzip, Zstd, None, ZstdChunked }

public static class LayerCompression
{
    public static Compression Parse(string text) => text.ToLowerInvariant() switch
    {
        "gzip" => Compression.Gzip,
        "zstd" => Compression.Zstd,
        "zstd:chunked" => Compression.ZstdChunked,
        "none" or "uncompressed" => Compression.None,
        _ => throw new TreechunkException($"unknown compression '{text}' (expected gzip, zstd, zstd:chunked or none)"),
    };

    public static string MediaType(Compression c) => c switch
    {
        Compression.Gzip => MediaTypes.LayerGzip,
        Compression.Zstd or Compression.ZstdChunked => MediaTypes.LayerZstd,
        _ => MediaTypes.Layer,
    };

    public static int DefaultLevel(Compression c) => c switch { Compression.Gzip => 6, Compression.Zstd or Compression.ZstdChunked => 3, _ => 0 };

    /// <summary>The name --compression takes.</summary>
    public static string Name(Compression c) => c == Compression.ZstdChunked ? "zstd:chunked" : c.ToString().ToLowerInvariant();

    public static void ValidateLevel(Compression c, int level)
    {
        var (lo, hi) = c switch { Compression.Gzip => (1, 9), Compression.Zstd or Compression.ZstdChunked => (1, 22), _ => (0, 0) };
        if (c == Compression.None) return;
        if (level < lo || level > hi)
            throw new TreechunkException($"compression level {level} is out of range for {Name(c)} ({lo}-{hi})");
    }

    /// <summary>A compressing write stream over <paramref name="inner"/> (left open); zstd:chunked is a layer format, not a stream (ZstdChunkedLayerFormat).</summary>
    public static Stream Compress(Stream inner, Compression c, int level, int zstdWorkers = 0) => c switch
    {
        Compression.ZstdChunked => throw new ArgumentException("zstd:chunked frames a layer file by file; use its layer format", nameof(c)),
        Compression.Gzip => new GZipStream(inner, new ZLibCompressionOptions { CompressionLevel = level }, leaveOpen: true),
        Compression.Zstd => Zstd.Compress(inner, level, zstdWorkers),
        _ => new NonClosingWriteStream(inner),
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
