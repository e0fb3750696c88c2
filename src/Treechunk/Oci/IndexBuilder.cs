namespace Treechunk.Oci;

/// <summary>One image of a multi-architecture index: where it is read from and what names it in messages.</summary>
public sealed record IndexEntrySource(IImageSource Source, Descriptor Manifest, string Name);

public sealed record IndexResult(Descriptor Index, IReadOnlyList<Descriptor> Entries, int BlobsCopied, int BlobsSkipped);

/// <summary>
/// Builds an OCI image index over images (one per platform, as `podman manifest create` and
/// `docker buildx` make): each entry's platform is read from its image's config, never guessed
/// from a name; two images of the same platform are refused, since a runtime could not tell
/// them apart. Every image is copied into the destination first (blobs it has are skipped), the
/// index is written over them and tagged, and the destination commits once.
/// </summary>
public static class IndexBuilder
{
    public static IndexResult Create(IReadOnlyList<IndexEntrySource> images, IImageDestination destination, string? tag,
        int parallel = 4, ITransferProgress? progress = null, Action<string>? log = null)
    {
        if (images.Count == 0) throw new TreechunkException("an index needs at least one image");
        var entries = new List<Descriptor>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (source, manifest, name) in images)
        {
            if (MediaTypes.IsIndex(manifest.MediaType))
                throw new TreechunkException($"{name} is an index, not an image: name one image per platform (e.g. with --platform when copying)");
            using var image = Image.Open(source, manifest);
            var c = image.Config;
            if (string.IsNullOrEmpty(c.Architecture) || string.IsNullOrEmpty(c.Os))
                throw new TreechunkException($"{name}: its config names no architecture or OS, so it has no platform for an index");
            var osVersion = c.Extra?.TryGetValue("os.version", out var v) == true && v.ValueKind == System.Text.Json.JsonValueKind.String ? v.GetString() : null;
            var platform = new Platform { Os = c.Os, Architecture = c.Architecture, Variant = c.Variant, OsVersion = osVersion };
            var key = $"{platform.Os}/{platform.Architecture}{(platform.Variant != null ? "/" + platform.Variant : "")}";
            if (seen.TryGetValue(key, out var other))
                throw new TreechunkException($"{name} and {other} are both {key}: an index holds one image per platform");
            seen[key] = name;
            entries.Add(new Descriptor { MediaType = manifest.MediaType, Digest = manifest.Digest, Size = manifest.Size, Platform = platform });
        }

        int copied = 0, skipped = 0;
        foreach (var (source, manifest, name) in images)
        {
            log?.Invoke($"copying {name} ({manifest.Digest})");
            var r = ImageCopier.CopyContent(source, manifest, destination, parallel, progress, log);
            copied += r.BlobsCopied;
            skipped += r.BlobsSkipped;
        }
        var bytes = OciJson.Serialize(new ImageIndex { MediaType = MediaTypes.ImageIndex, Manifests = entries });
        var index = new Descriptor { MediaType = MediaTypes.ImageIndex, Digest = Digest.Sha256(bytes), Size = bytes.Length };
        destination.PutManifest(index, bytes);
        destination.Tag(index, tag);
        destination.Commit();
        return new IndexResult(index, entries, copied, skipped);
    }
}
