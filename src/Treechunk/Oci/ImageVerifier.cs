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

    /// <summary>
    /// Verifies every image under <paramref name="top"/> (each manifest of an index) and throws
    /// naming the first bad blob (exit 1): the check a chunk directory gets before it is uploaded
    /// or merged, so nothing is written from chunks that are wrong.
    /// </summary>
    public static int VerifyOrThrow(IImageSource source, Descriptor top, Action<BlobCheck>? onChecked = null)
    {
        int blobs = 0;
        foreach (var manifest in Manifests(source, top, 0))
        {
            using var image = Image.Open(source, manifest);
            foreach (var check in Verify(image, onChecked))
            {
                if (!check.Ok) throw new TreechunkException($"{source.Name}: {check.Kind} {check.Digest}: {check.Problem}", ExitCodes.VerificationFailed);
                blobs++;
            }
        }
        return blobs;
    }

    private static IEnumerable<Descriptor> Manifests(IImageSource source, Descriptor d, int depth)
    {
        if (!MediaTypes.IsIndex(d.MediaType))
        {
            yield return d;
            yield break;
        }
        if (depth > 4) throw new TreechunkException($"{source.Name}: index nesting too deep");
        var index = OciJson.Deserialize<ImageIndex>(source.ReadManifest(d), $"index {d.Digest}");
        foreach (var child in index.Manifests.Where(m => MediaTypes.IsIndex(m.MediaType) || MediaTypes.IsManifest(m.MediaType)))
            foreach (var m in Manifests(source, child, depth + 1)) yield return m;
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
