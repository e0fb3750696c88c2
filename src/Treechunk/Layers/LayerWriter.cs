using Treechunk.Oci;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Layers;

public sealed record WrittenLayer(Descriptor Descriptor, string DiffId, long UncompressedSize, int EntryCount)
{
    /// <summary>True when the compressed blob came from the layer cache instead of being compressed again.</summary>
    public bool FromCache { get; init; }
}

/// <summary>How layers are encoded: the format (everything that decides the blob from the tar) and the tar's timestamps.</summary>
public sealed record LayerSettings(ILayerFormat Format, long SourceDateEpoch)
{
    /// <summary>Reuse compressed layers whose uncompressed content was encoded before in the same format.</summary>
    public LayerCache? Cache { get; init; }
}

/// <summary>
/// Writes one layer blob in a single streaming pass: entries -> format encoder (tar, diff_id
/// hash, compressor) -> digest hash -> the destination's blob writer, which names it by its
/// digest. Nothing is held in memory but the copy buffers. With a cache, a first pass only hashes
/// the tar; a known diff_id then costs no compression at all, and a new blob is written into the
/// cache first and placed into the destination from there (a hardlink for a local layout).
/// </summary>
public static class LayerWriter
{
    public static WrittenLayer Write(ITree tree, IReadOnlyList<TreeEntry> entries, IImageDestination destination, LayerSettings settings)
    {
        if (settings.Cache is { } cache)
        {
            var (diffId, uncompressed) = HashTar(tree, entries, settings.SourceDateEpoch);
            if (cache.TryReuse(diffId, settings.Format) is { } hit)
            {
                destination.PutBlob(hit.Descriptor, BlobContent.FromFile(hit.Path));
                return new WrittenLayer(hit.Descriptor, diffId, uncompressed, entries.Count) { FromCache = true };
            }
            if (cache.CreateBlob() is { } cached)
            {
                WrittenLayer written;
                string path;
                using (cached)
                {
                    written = Encode(tree, entries, cached.Stream, settings);
                    path = cached.Commit(written.Descriptor.Digest);
                }
                cache.Record(written, settings.Format);
                destination.PutBlob(written.Descriptor, BlobContent.FromFile(path));
                return written;
            }
        }
        using var blob = destination.CreateBlob();
        var layer = Encode(tree, entries, blob.Stream, settings);
        blob.Commit(layer.Descriptor.Digest);
        return layer;
    }

    private static WrittenLayer Encode(ITree tree, IReadOnlyList<TreeEntry> entries, Stream blob, LayerSettings settings)
    {
        EncodedLayer encoded;
        string digest;
        long size;
        using (var blobHash = new HashingStream(blob, leaveOpen: true))
        {
            using (var encoder = settings.Format.Begin(blobHash, settings.SourceDateEpoch))
            {
                AddEntries(tree, entries, encoder.Add);
                encoded = encoder.Finish();
            }
            digest = blobHash.Digest();
            size = blobHash.BytesWritten;
        }
        var descriptor = new Descriptor { MediaType = settings.Format.MediaType, Digest = digest, Size = size };
        if (encoded.Annotations is { Count: > 0 } a) descriptor.Annotations = new SortedDictionary<string, string>(a.ToDictionary(), StringComparer.Ordinal);
        return new WrittenLayer(descriptor, encoded.DiffId ?? digest, encoded.UncompressedSize, entries.Count);
    }

    private static (string DiffId, long Size) HashTar(ITree tree, IReadOnlyList<TreeEntry> entries, long epoch)
    {
        using var hash = new HashingStream(Stream.Null, leaveOpen: true);
        var buffered = new BufferedStream(hash, 1 << 16);
        using (var tar = new PaxTarWriter(buffered, epoch))
        {
            AddEntries(tree, entries, tar.Write);
            tar.Finish();
        }
        buffered.Flush();
        return (hash.Digest(), hash.BytesWritten);
    }

    private static void AddEntries(ITree tree, IReadOnlyList<TreeEntry> entries, Action<TreeEntry, Stream?> add)
    {
        foreach (var e in entries)
        {
            if (e.Type == EntryType.Regular && e.Size > 0)
            {
                using var content = tree.OpenContent(e);
                add(e, content);
            }
            else add(e, null);
        }
    }
}
