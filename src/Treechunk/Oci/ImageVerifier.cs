using System.Buffers;

namespace Treechunk.Oci;

public sealed record BlobCheck(string Kind, int? LayerIndex, string Digest, long Size, string? DiffId, string? Problem)
{
    public bool Ok => Problem == null;
}

/// <summary>
/// Checks every blob an image names: config and layer digests and sizes, and each layer's
/// uncompressed digest against the config's diff_ids. Each layer is read once, hashing the
/// compressed and the uncompressed bytes in the same pass.
/// </summary>
public static class ImageVerifier
{
    public static List<BlobCheck> Verify(OpenedImage image, Action<BlobCheck>? onChecked = null)
    {
        var checks = new List<BlobCheck>();
        // Manifest and config were verified when the image was opened, or opening failed.
        checks.Add(new BlobCheck("manifest", null, image.ManifestDescriptor.Digest, image.ManifestDescriptor.Size, null, null));
        checks.Add(new BlobCheck("config", null, image.Manifest.Config.Digest, image.Manifest.Config.Size, null, null));
        foreach (var c in checks) onChecked?.Invoke(c);
        for (int i = 0; i < image.Manifest.Layers.Count; i++)
        {
            var check = VerifyLayer(image.Layout, image.Manifest.Layers[i], image.Config.RootFs.DiffIds[i], i);
            checks.Add(check);
            onChecked?.Invoke(check);
        }
        return checks;
    }

    public static BlobCheck VerifyLayer(OciLayout layout, Descriptor d, string expectedDiffId, int index)
    {
        BlobCheck Bad(string problem) => new("layer", index, d.Digest, d.Size, expectedDiffId, problem);
        var path = layout.BlobPath(d.Digest);
        if (!File.Exists(path)) return Bad("blob is missing");
        long actualSize = new FileInfo(path).Length;
        if (actualSize != d.Size) return Bad($"size is {actualSize}, manifest says {d.Size}");
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        try
        {
            var compressed = new HashingReadStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan));
            string diffId, digest;
            using (var uncompressed = new HashingReadStream(LayerCompression.Decompress(compressed, d.MediaType)))
            {
                try
                {
                    while (uncompressed.Read(buffer, 0, buffer.Length) > 0) { }
                    // Drain what the decompressor did not need, so the compressed digest covers the whole blob.
                    while (compressed.Read(buffer, 0, buffer.Length) > 0) { }
                }
                catch (Exception e) when (e is InvalidDataException or IOException or ZstdSharp.ZstdException)
                {
                    while (compressed.Read(buffer, 0, buffer.Length) > 0) { }
                    return Bad(compressed.Digest() != d.Digest ? "digest mismatch (content is corrupt)" : $"cannot decompress: {e.Message}");
                }
                diffId = uncompressed.Digest();
                digest = compressed.Digest();
            }
            if (digest != d.Digest) return Bad($"digest mismatch: content hashes to {digest}");
            if (diffId != expectedDiffId) return Bad($"diff_id mismatch: uncompressed content hashes to {diffId}, config says {expectedDiffId}");
            return new BlobCheck("layer", index, d.Digest, d.Size, diffId, null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
