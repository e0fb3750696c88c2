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

/// <summary>
/// How a layer's tar became its blob, as the <see cref="Annotations.Compression"/> annotation
/// records it: <c>zstd;level=3;workers=0;encoder=zstd-1.5.7</c>. A client that rebuilds the tar
/// (from a delta) compresses it again with exactly these settings and gets the blob the manifest
/// names, digest and all, when the encoder is one whose bytes are pinned.
/// </summary>
public sealed record LayerCompressionParams(string Algorithm, int Level, int Workers, string Encoder)
{
    /// <summary>The settings a build with this compression writes its layers with.</summary>
    public static LayerCompressionParams For(Compression c, int level, int zstdWorkers) => c switch
    {
        // Any worker count of 1 or more frames alike (Zstd.Compress), so the annotation says 0 or
        // 1: builds that differ only in --parallel-chunks N >= 1 keep the same manifest digest.
        Compression.Zstd => new("zstd", level, Math.Min(zstdWorkers, 1), Zstd.EncoderId),
        // zstd:chunked frames every file alone and is single-threaded (see ZstdChunkedLayerFormat).
        Compression.ZstdChunked => new("zstd:chunked", level, 0, Zstd.EncoderId),
        // .NET's zlib-ng ships with the runtime: its bytes are stable for one runtime, not pinned.
        Compression.Gzip => new("gzip", level, 0, "dotnet-zlib-" + Environment.Version),
        _ => new("none", 0, 0, "none"),
    };

    public override string ToString() => $"{Algorithm};level={Level};workers={Workers};encoder={Encoder}";

    /// <summary>The annotation's settings, or null when the layer has none or it is not of this form.</summary>
    public static LayerCompressionParams? Of(Descriptor layer) =>
        layer.Annotations?.GetValueOrDefault(Annotations.Compression) is { } text ? Parse(text) : null;

    public static LayerCompressionParams? Parse(string text)
    {
        var parts = text.Split(';');
        if (parts.Length != 4 || parts[0].Length == 0) return null;
        string? Value(string part, string key) => part.StartsWith(key + "=", StringComparison.Ordinal) ? part[(key.Length + 1)..] : null;
        if (!int.TryParse(Value(parts[1], "level"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var level) ||
            !int.TryParse(Value(parts[2], "workers"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var workers) ||
            Value(parts[3], "encoder") is not { Length: > 0 } encoder)
            return null;
        return new LayerCompressionParams(parts[0], level, workers, encoder);
    }

    /// <summary>
    /// Why a blob cannot be made again from its tar by this build of treechunk, or null when it
    /// can: plain zstd with the pinned encoder is reproducible, and so is an uncompressed layer (native and managed give the same
    /// bytes). gzip is the runtime's zlib, whose output may change with a .NET update, so it is
    /// not relied on; zstd:chunked is a layer format (frames per file, TOC, tar-split) that would
    /// have to be re-encoded from the tar's entries, and it has partial pulls already.
    /// </summary>
    public string? WhyNotReproducible() => Algorithm switch
    {
        "zstd" when Encoder != Zstd.EncoderId => $"compressed by {Encoder}, not the pinned {Zstd.EncoderId}",
        "zstd" when Level is < 1 or > 22 => $"zstd level {Level} is out of range",
        "zstd" when Workers is < 0 or > 256 => $"{Workers} zstd workers is out of range",
        "zstd" => null,
        "zstd:chunked" => "zstd:chunked layers are framed file by file from the tree, not from a tar (they are pulled partially instead)",
        "gzip" => "gzip bytes come from the .NET runtime's zlib, which is not pinned",
        "none" => null,
        _ => $"unknown compression '{Algorithm}'",
    };

    /// <summary>A write stream compressing into <paramref name="inner"/> (left open) exactly as the layer was; only for reproducible settings.</summary>
    public Stream Compress(Stream inner) =>
        WhyNotReproducible() is { } why ? throw new InvalidOperationException(why)
        : Algorithm == "none" ? new NonClosingWriteStream(inner) : new FlushedAtEnd(Zstd.Compress(inner, Level, Workers));

    /// <summary>
    /// The layer writer flushes its compressor once after the tar's last byte (its buffered
    /// stream's Flush reaches it) and then ends the frame; a flush closes the current zstd block,
    /// so the blob's bytes depend on it and a rebuild must do the same to get the same digest.
    /// </summary>
    private sealed class FlushedAtEnd(Stream compressor) : WriteOnlyStream
    {
        public override void Write(ReadOnlySpan<byte> buffer) => compressor.Write(buffer);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                compressor.Flush();
                compressor.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
