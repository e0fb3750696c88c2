using System.Text.Json;
using Treechunk.IO;
using Treechunk.Oci;

namespace Treechunk.Layers;

/// <summary>
/// Compressed layers kept between builds, keyed by the uncompressed content (diff_id) and
/// everything that decides the compressed bytes (the format's cache key: compression, level,
/// zstd workers, the compressor's own version), so a rebuild recompresses only layers whose
/// content changed. Entries are a blob named by its digest plus a small JSON record per key;
/// both are written atomically. A damaged or unwritable cache costs speed, never a build.
/// </summary>
public sealed class LayerCache
{
    private readonly string _dir;
    private int _hits, _misses;

    public int Hits => _hits;
    public int Misses => _misses;

    public LayerCache(string dir)
    {
        _dir = dir;
        Directory.CreateDirectory(_dir);
    }

    private string KeyPath(string diffId, ILayerFormat format) =>
        Path.Join(_dir, Digest.Sha256(System.Text.Encoding.UTF8.GetBytes($"{diffId}|{format.CacheKey}"))[7..] + ".json");

    private string BlobPath(string digest) => Path.Join(_dir, Digest.Hex(digest));

    /// <param name="Annotations">What the format said of the blob (zstd:chunked's TOC position and checksum): it belongs to the bytes, so it is kept with them.</param>
    internal sealed record Entry(string Digest, long Size, string MediaType, SortedDictionary<string, string>? Annotations = null);

    public sealed record Hit(Descriptor Descriptor, string Path);

    public Hit? TryReuse(string diffId, ILayerFormat format)
    {
        var keyPath = KeyPath(diffId, format);
        try
        {
            if (File.Exists(keyPath) && JsonSerializer.Deserialize(File.ReadAllBytes(keyPath), LayerCacheJson.Default.Entry) is { } entry)
            {
                var cached = BlobPath(entry.Digest);
                if (File.Exists(cached) && new FileInfo(cached).Length == entry.Size)
                {
                    Interlocked.Increment(ref _hits);
                    return new Hit(new Descriptor
                    {
                        MediaType = entry.MediaType, Digest = entry.Digest, Size = entry.Size,
                        Annotations = entry.Annotations is { Count: > 0 } a ? new SortedDictionary<string, string>(a, StringComparer.Ordinal) : null,
                    }, cached);
                }
            }
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException or TreechunkException)
        {
            // A damaged cache entry is a miss.
        }
        Interlocked.Increment(ref _misses);
        return null;
    }

    /// <summary>A new blob in the cache, or null when the cache cannot be written (the layer then goes straight to its destination).</summary>
    public CachedBlob? CreateBlob()
    {
        try
        {
            return new CachedBlob(this, AtomicFile.CreateIn(_dir, "layer"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Remembers that <paramref name="layer"/>'s diff_id in <paramref name="format"/> is its blob.</summary>
    public void Record(WrittenLayer layer, ILayerFormat format)
    {
        try
        {
            AtomicFile.Write(KeyPath(layer.DiffId, format),
                JsonSerializer.SerializeToUtf8Bytes(new Entry(layer.Descriptor.Digest, layer.Descriptor.Size, layer.Descriptor.MediaType, layer.Descriptor.Annotations), LayerCacheJson.Default.Entry));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only costs speed next time.
        }
    }

    public sealed class CachedBlob(LayerCache cache, AtomicFile file) : IDisposable
    {
        public Stream Stream => file.Stream;

        /// <summary>Names the blob by its digest in the cache and returns its path.</summary>
        public string Commit(string digest)
        {
            var path = cache.BlobPath(digest);
            file.CommitContentAddressed(path);
            return path;
        }

        public void Dispose() => file.Dispose();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(LayerCache.Entry))]
internal sealed partial class LayerCacheJson : System.Text.Json.Serialization.JsonSerializerContext;
