namespace Treechunk.Oci;

/// <summary>
/// Somewhere images are read from: an OCI layout, an oci-archive, a registry. A source resolves
/// what a reference names and hands out raw bytes; checking them is the caller's (see
/// <see cref="VerifyingStream"/>, <see cref="Image"/>), so every transport is checked the same way.
/// </summary>
public interface IImageSource : IDisposable
{
    /// <summary>Names the source in messages, e.g. "oci:/srv/image".</summary>
    string Name { get; }

    /// <summary>
    /// The top-level descriptor a reference names: the one with <paramref name="digest"/>, or
    /// tagged <paramref name="tag"/>, or with neither the one tagged "latest" or the only one.
    /// It may be an index.
    /// </summary>
    Descriptor Resolve(string? tag, string? digest);

    /// <summary>A manifest or index, whole and verified against its descriptor.</summary>
    byte[] ReadManifest(Descriptor descriptor);

    /// <summary>A blob's bytes as stored, not verified. A missing blob is a <see cref="TreechunkException"/> (exit 1).</summary>
    Stream OpenBlob(Descriptor descriptor);

    /// <summary><paramref name="length"/> bytes of a blob from <paramref name="offset"/>, not verified (partial reads check what they read by other digests).</summary>
    Stream OpenBlobRange(Descriptor descriptor, long offset, long length);
}

public static class ImageSources
{
    /// <summary>The most a manifest or config may be; registries refuse manifests over 4 MiB, configs of a few MB exist.</summary>
    public const long MaxMetadataSize = 64L << 20;

    /// <summary>Reads a small blob (a config) whole, verified.</summary>
    public static byte[] ReadBlob(this IImageSource source, Descriptor descriptor, string what) =>
        VerifyingStream.ReadAll(source.OpenBlob(descriptor), descriptor, what, MaxMetadataSize);

    /// <summary>
    /// The tagged descriptor a tag names in a list of index entries, or the default one (tagged
    /// latest, or the only one); shared by the layout and archive transports.
    /// </summary>
    public static Descriptor PickTagged(IReadOnlyList<Descriptor> manifests, string? tag, string name)
    {
        if (tag != null)
            return manifests.FirstOrDefault(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == tag)
                   ?? throw new TreechunkException($"{name}: no image tagged '{tag}' (tags: {TagList(manifests)})");
        // Signatures kept beside an image (tags sha256-HEX.sig, sha256-HEX) are not images of
        // their own: a signed layout still has one image to default to.
        manifests = manifests.Where(m => !IsAttachmentTag(m.Annotations?.GetValueOrDefault(Annotations.RefName))).ToList();
        if (manifests.Count == 1) return manifests[0];
        return manifests.FirstOrDefault(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == "latest")
               ?? throw new TreechunkException(manifests.Count == 0
                   ? $"{name}: the layout holds no image"
                   : $"{name}: holds {manifests.Count} images; name one with :TAG (tags: {TagList(manifests)})");
    }

    /// <summary>Whether a tag is where cosign and skopeo attach signatures to a manifest (sha256-HEX.sig) or the referrers tag scheme's (sha256-HEX).</summary>
    public static bool IsAttachmentTag(string? tag) =>
        tag != null && tag.StartsWith("sha256-", StringComparison.Ordinal) &&
        (tag.Length == 71 || (tag.Length > 71 && tag[71] == '.')) && tag.AsSpan(7, 64).IndexOfAnyExcept("0123456789abcdef") < 0;

    public static string TagList(IReadOnlyList<Descriptor> manifests)
    {
        var tags = manifests.Select(m => m.Annotations?.GetValueOrDefault(Annotations.RefName)).Where(t => t != null).ToList();
        return tags.Count == 0 ? "none" : string.Join(", ", tags);
    }

    /// <summary>The manifest of an index for exactly <paramref name="platform"/> (os, architecture, and variant when given).</summary>
    public static Descriptor SelectPlatform(this IImageSource source, Descriptor index, Platform platform, string asked)
    {
        if (!MediaTypes.IsIndex(index.MediaType)) throw new TreechunkException($"{source.Name} is a single image, not an index: --platform does not apply");
        var parsed = OciJson.Deserialize<ImageIndex>(source.ReadManifest(index), $"index {index.Digest}");
        return parsed.Manifests.FirstOrDefault(m => m.Platform is { } pl && pl.Os == platform.Os && pl.Architecture == platform.Architecture &&
                                                     (platform.Variant == null || pl.Variant == platform.Variant))
               ?? throw new TreechunkException($"index {index.Digest} has no image for {asked} (it has: {string.Join(", ", parsed.Manifests.Select(m => m.Platform is { } pl ? $"{pl.Os}/{pl.Architecture}{(pl.Variant != null ? "/" + pl.Variant : "")}" : "no platform"))})");
    }

    /// <summary>A blob stored as a file (layouts, chunk directories): opened for sequential reading; a missing file is <paramref name="missing"/>.</summary>
    internal static Stream OpenBlobFile(string path, Func<TreechunkException> missing)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (FileNotFoundException)
        {
            throw missing();
        }
    }

    /// <summary>A byte range of an opened blob.</summary>
    internal static Stream Range(Stream blob, long offset, long length)
    {
        blob.Seek(offset, SeekOrigin.Begin);
        return new IO.BoundedStream(blob, length);
    }

    /// <summary>A descriptor for a manifest known only by its bytes (a digest reference to a blob no index lists).</summary>
    public static Descriptor DescribeManifest(byte[] raw, string digest, string name)
    {
        string? mediaType = null;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(raw);
            if (doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object &&
                doc.RootElement.TryGetProperty("mediaType", out var mt) && mt.ValueKind == System.Text.Json.JsonValueKind.String)
                mediaType = mt.GetString();
            else if (doc.RootElement.TryGetProperty("manifests", out _)) mediaType = MediaTypes.ImageIndex;
            else if (doc.RootElement.TryGetProperty("config", out _)) mediaType = MediaTypes.ImageManifest;
        }
        catch (System.Text.Json.JsonException) { }
        if (!MediaTypes.IsIndex(mediaType) && !MediaTypes.IsManifest(mediaType))
            throw new TreechunkException($"{name}: {digest} is not a manifest or an index");
        return new Descriptor { MediaType = mediaType!, Digest = digest, Size = raw.Length };
    }
}
