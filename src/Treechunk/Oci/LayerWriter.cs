using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Oci;

public sealed record WrittenLayer(Descriptor Descriptor, string DiffId, long UncompressedSize, int EntryCount);

/// <summary>
/// Writes one layer blob in a single streaming pass: tar -> hash (diff_id) -> compress -> hash
/// (digest) -> temp file, then renames the temp file to its digest. Nothing is held in memory
/// but the copy buffer.
/// </summary>
public static class LayerWriter
{
    public static WrittenLayer Write(ITree tree, IReadOnlyList<TreeEntry> entries, string blobsDir,
        Compression compression, int level, long sourceDateEpoch)
    {
        var temp = Path.Join(blobsDir, ".tmp-layer-" + Guid.NewGuid().ToString("N"));
        try
        {
            string digest, diffId;
            long size, uncompressed;
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                using var compressedHash = new HashingStream(file, leaveOpen: true);
                var compressor = LayerCompression.Compress(compressedHash, compression, level);
                // Uncompressed layers are their own diff_id: hash them once.
                var uncompressedHash = compression == Compression.None ? compressedHash : new HashingStream(compressor, leaveOpen: true);
                // Tar headers are 512-byte writes; batch them before they reach the hash and compressor.
                var buffered = new BufferedStream(uncompressedHash, 1 << 16);
                using (var tar = new PaxTarWriter(buffered, sourceDateEpoch))
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
                diffId = uncompressedHash.Digest();
                uncompressed = uncompressedHash.BytesWritten;
                if (uncompressedHash != compressedHash) uncompressedHash.Dispose();
                compressor.Dispose(); // ends the compressed stream, writing its trailer through compressedHash
                digest = compressedHash.Digest();
                size = compressedHash.BytesWritten;
            }
            Commit(temp, Path.Join(blobsDir, Digest.Hex(digest)));
            return new WrittenLayer(
                new Descriptor { MediaType = LayerCompression.MediaType(compression), Digest = digest, Size = size },
                compression == Compression.None ? digest : diffId, uncompressed, entries.Count);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Moves a finished temp blob to its content address; an existing blob with that name is the same bytes.</summary>
    public static void Commit(string temp, string final)
    {
        if (File.Exists(final)) File.Delete(temp);
        else File.Move(temp, final);
    }
}
