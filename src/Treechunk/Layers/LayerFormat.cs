using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Layers;

/// <summary>
/// How a layer's entries become blob bytes: the per-entry seam of the layer writer. The plain
/// format is a tar through one compressor; zstd:chunked (<see cref="ZstdChunkedLayerFormat"/>)
/// frames each file on its own and adds a table of contents, without the writer, the cache or
/// the scheduler changing.
/// </summary>
public interface ILayerFormat
{
    string MediaType { get; }

    /// <summary>Everything besides the tar itself that decides the blob's bytes (compressor, level, workers, encoder version): the layer cache's key.</summary>
    string CacheKey { get; }

    /// <summary>Starts a layer whose blob bytes go to <paramref name="blob"/> (left open).</summary>
    ILayerEncoder Begin(Stream blob, long sourceDateEpoch);
}

/// <summary>One layer being encoded, entry by entry in tar order.</summary>
public interface ILayerEncoder : IDisposable
{
    /// <summary>Adds an entry; <paramref name="content"/> is a regular file's bytes, else null.</summary>
    void Add(TreeEntry entry, Stream? content);

    /// <summary>Ends the layer (tar end blocks, compressor trailer) and says what it was.</summary>
    EncodedLayer Finish();
}

/// <param name="DiffId">The uncompressed tar's digest; null when the blob is the tar itself (its digest is the diff_id).</param>
/// <param name="Annotations">Layer annotations the format adds (zstd:chunked's table-of-contents position), or null.</param>
public sealed record EncodedLayer(string? DiffId, long UncompressedSize, IReadOnlyDictionary<string, string>? Annotations = null);

public static class LayerFormats
{
    /// <summary>The format for a compression setting; <paramref name="zstdWorkers"/> applies to plain zstd only (zstd:chunked frames are single-threaded so their bytes never depend on it).</summary>
    public static ILayerFormat For(Compression compression, int level, int zstdWorkers = 0) => compression == Compression.ZstdChunked
        ? new ZstdChunkedLayerFormat(level)
        : new TarLayerFormat(compression, level, zstdWorkers);
}

/// <summary>A reproducible PAX tar through gzip, zstd or nothing.</summary>
public sealed record TarLayerFormat(Compression Compression, int Level, int ZstdWorkers = 0) : ILayerFormat
{
    public string MediaType => LayerCompression.MediaType(Compression);

    public string CacheKey => $"{Compression}|{Level}|{ZstdWorkers}|{CompressorVersion}";

    private string CompressorVersion => Compression switch
    {
        Compression.Zstd => Zstd.EncoderId,
        Compression.Gzip => "zlib-" + Environment.Version,
        _ => "none",
    };

    public ILayerEncoder Begin(Stream blob, long sourceDateEpoch) => new Encoder(this, blob, sourceDateEpoch);

    private sealed class Encoder : ILayerEncoder
    {
        private readonly Stream _compressor;
        private readonly HashingStream? _tarHash;
        private readonly BufferedStream _buffered;
        private readonly PaxTarWriter _tar;
        private long _uncompressed;
        private bool _finished;

        public Encoder(TarLayerFormat format, Stream blob, long epoch)
        {
            _compressor = LayerCompression.Compress(blob, format.Compression, format.Level, format.ZstdWorkers);
            // Uncompressed layers are their own diff_id: the writer's blob hash is enough.
            _tarHash = format.Compression == Compression.None ? null : new HashingStream(_compressor, leaveOpen: true);
            // Tar headers are 512-byte writes; batch them before they reach the hash and compressor.
            _buffered = new BufferedStream((Stream?)_tarHash ?? _compressor, 1 << 16);
            _tar = new PaxTarWriter(new CountingStream(_buffered, n => _uncompressed += n), epoch);
        }

        public void Add(TreeEntry entry, Stream? content) => _tar.Write(entry, content);

        public EncodedLayer Finish()
        {
            _tar.Finish();
            _buffered.Flush();
            var diffId = _tarHash?.Digest();
            Dispose();
            return new EncodedLayer(diffId, _uncompressed);
        }

        public void Dispose()
        {
            if (_finished) return;
            _finished = true;
            _tar.Dispose();
            _tarHash?.Dispose();
            _compressor.Dispose(); // ends the compressed stream, writing its trailer
        }
    }
}
