using System.Text.Json;

namespace Treechunk.Oci;

/// <summary>
/// Compressed layers kept between builds, keyed by the uncompressed content (diff_id) and
/// everything that decides the compressed bytes (compression, level, zstd workers, and the
/// compressor's own version), so a rebuild recompresses only layers whose content changed.
/// Entries are a blob plus a small JSON record naming its digest; both are written atomically.
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

    private static string CompressorVersion(Compression c) => c switch
    {
        Compression.Zstd => Zstd.EncoderId,
        Compression.Gzip => "zlib-" + Environment.Version,
        _ => "none",
    };

    private string KeyPath(string diffId, LayerSettings s)
    {
        var key = $"{diffId}|{s.Compression}|{s.Level}|{s.ZstdWorkers}|{CompressorVersion(s.Compression)}";
        return Path.Join(_dir, Digest.Sha256(System.Text.Encoding.UTF8.GetBytes(key))[7..] + ".json");
    }

    internal sealed record Entry(string Digest, long Size, string MediaType);

    public Descriptor? TryReuse(string diffId, LayerSettings settings, string blobsDir)
    {
        var keyPath = KeyPath(diffId, settings);
        try
        {
            if (File.Exists(keyPath) && JsonSerializer.Deserialize(File.ReadAllBytes(keyPath), LayerCacheJson.Default.Entry) is { } entry)
            {
                var cached = Path.Join(_dir, Digest.Hex(entry.Digest));
                if (File.Exists(cached) && new FileInfo(cached).Length == entry.Size)
                {
                    var target = Path.Join(blobsDir, Digest.Hex(entry.Digest));
                    if (!File.Exists(target)) Place(cached, target);
                    Interlocked.Increment(ref _hits);
                    return new Descriptor { MediaType = entry.MediaType, Digest = entry.Digest, Size = entry.Size };
                }
            }
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException or TreechunkException)
        {
            // A damaged cache entry is a miss, never a failed build.
        }
        Interlocked.Increment(ref _misses);
        return null;
    }

    public void Store(WrittenLayer layer, LayerSettings settings, string blobsDir)
    {
        try
        {
            var cached = Path.Join(_dir, Digest.Hex(layer.Descriptor.Digest));
            if (!File.Exists(cached)) Place(Path.Join(blobsDir, Digest.Hex(layer.Descriptor.Digest)), cached);
            var keyPath = KeyPath(layer.DiffId, settings);
            var temp = keyPath + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
            File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(new Entry(layer.Descriptor.Digest, layer.Descriptor.Size, layer.Descriptor.MediaType), LayerCacheJson.Default.Entry));
            File.Move(temp, keyPath, overwrite: true);
        }
        catch (IOException)
        {
            // A cache that cannot be written only costs speed next time.
        }
    }

    /// <summary>Hardlinks when source and target share a filesystem, else copies; via a temp name so readers never see half a blob.</summary>
    private static void Place(string source, string target)
    {
        var temp = target + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            if (!Posix.LibC.TryLink(source, temp)) File.Copy(source, temp);
            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(LayerCache.Entry))]
internal sealed partial class LayerCacheJson : System.Text.Json.Serialization.JsonSerializerContext;
