using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Oci;

public sealed record WrittenLayer(Descriptor Descriptor, string DiffId, long UncompressedSize, int EntryCount)
{
    /// <summary>True when the compressed blob came from the layer cache instead of being compressed again.</summary>
    public bool FromCache { get; init; }
}

/// <summary>How layers are encoded; everything that decides a layer's compressed bytes.</summary>
public sealed record LayerSettings(Compression Compression, int Level, long SourceDateEpoch)
{
    /// <summary>zstd worker threads inside one layer; 0 is zstd's single-threaded mode (see LayerCompression).</summary>
    public int ZstdWorkers { get; init; }
    /// <summary>Reuse compressed layers whose uncompressed content was compressed before with the same settings.</summary>
    public LayerCache? Cache { get; init; }
}

/// <summary>
/// Writes one layer blob in a single streaming pass: tar -> hash (diff_id) -> compress -> hash
/// (digest) -> temp file, then renames the temp file to its digest. Nothing is held in memory
/// but the copy buffers. With a cache, a first pass only hashes the tar; a known diff_id then
/// costs no compression at all.
/// </summary>
public static class LayerWriter
{
    public static WrittenLayer Write(ITree tree, IReadOnlyList<TreeEntry> entries, string blobsDir, LayerSettings settings)
    {
        if (settings.Cache is { } cache)
        {
            var (diffId, uncompressed) = HashTar(tree, entries, settings.SourceDateEpoch);
            if (cache.TryReuse(diffId, settings, blobsDir) is { } descriptor)
                return new WrittenLayer(descriptor, diffId, uncompressed, entries.Count) { FromCache = true };
            var written = Compress(tree, entries, blobsDir, settings);
            cache.Store(written, settings, blobsDir);
            return written;
        }
        return Compress(tree, entries, blobsDir, settings);
    }

    private static WrittenLayer Compress(ITree tree, IReadOnlyList<TreeEntry> entries, string blobsDir, LayerSettings settings)
    {
        var temp = Path.Join(blobsDir, ".tmp-layer-" + Guid.NewGuid().ToString("N"));
        try
        {
            string digest, diffId;
            long size, uncompressed;
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                using var compressedHash = new HashingStream(file, leaveOpen: true);
                var compressor = LayerCompression.Compress(compressedHash, settings.Compression, settings.Level, settings.ZstdWorkers);
                // Uncompressed layers are their own diff_id: hash them once.
                var uncompressedHash = settings.Compression == Compression.None ? compressedHash : new HashingStream(compressor, leaveOpen: true);
                WriteTar(tree, entries, uncompressedHash, settings.SourceDateEpoch);
                diffId = uncompressedHash.Digest();
                uncompressed = uncompressedHash.BytesWritten;
                if (uncompressedHash != compressedHash) uncompressedHash.Dispose();
                compressor.Dispose(); // ends the compressed stream, writing its trailer through compressedHash
                digest = compressedHash.Digest();
                size = compressedHash.BytesWritten;
            }
            Commit(temp, Path.Join(blobsDir, Digest.Hex(digest)));
            return new WrittenLayer(
                new Descriptor { MediaType = LayerCompression.MediaType(settings.Compression), Digest = digest, Size = size },
                settings.Compression == Compression.None ? digest : diffId, uncompressed, entries.Count);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static (string DiffId, long Size) HashTar(ITree tree, IReadOnlyList<TreeEntry> entries, long epoch)
    {
        using var hash = new HashingStream(Stream.Null, leaveOpen: true);
        WriteTar(tree, entries, hash, epoch);
        return (hash.Digest(), hash.BytesWritten);
    }

    private static void WriteTar(ITree tree, IReadOnlyList<TreeEntry> entries, Stream output, long epoch)
    {
        // Tar headers are 512-byte writes; batch them before they reach the hash and compressor.
        var buffered = new BufferedStream(output, 1 << 16);
        using (var tar = new PaxTarWriter(buffered, epoch))
        {
            foreach (var e in entries)
            {
                if (e.Type == EntryType.Regular && e.Size > 0)
                {
                    using var content = tree.OpenContent(e);
                    tar.Write(e, content);
                }
                else tar.Write(e, null);
            }
            tar.Finish();
        }
        buffered.Flush();
    }

    /// <summary>Moves a finished temp blob to its content address; an existing blob with that name is the same bytes.</summary>
    public static void Commit(string temp, string final)
    {
        if (File.Exists(final)) File.Delete(temp);
        else File.Move(temp, final);
    }
}
