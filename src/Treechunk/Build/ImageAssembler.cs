using Treechunk.Chunking;
using Treechunk.Layers;
using Treechunk.Oci;

namespace Treechunk.Build;

/// <summary>
/// The image around written layers: config (labels merged over the base image's, diff_ids,
/// history, created), manifest (layer annotations, manifest annotations) and the tag, all
/// written through the destination. Canonical JSON, so the same layers give the same digests.
/// </summary>
public static class ImageAssembler
{
    public sealed record AssembledLayer(WrittenLayer Written, IReadOnlyDictionary<string, string> Annotations, string HistoryComment);

    public static (Descriptor Descriptor, ImageManifest Manifest, ImageConfig Config) Assemble(
        IReadOnlyList<AssembledLayer> layers, IImageDestination destination, BuildOptions options, IReadOnlyDictionary<string, string> extraLabels)
    {
        var created = DateTimeOffset.FromUnixTimeSeconds(options.SourceDateEpoch ?? options.Created ?? 0).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (options.BaseConfig?.Labels != null) foreach (var (k, v) in options.BaseConfig.Labels) labels[k] = v;
        foreach (var (k, v) in options.Labels) labels[k] = v;
        foreach (var (k, v) in extraLabels) labels[k] = v;
        var runtime = options.BaseConfig ?? new ContainerConfig();
        runtime.Labels = labels.Count > 0 ? labels : null;
        var config = new ImageConfig
        {
            Created = created,
            Architecture = Platforms.Normalize(options.Architecture ?? Platforms.HostArchitecture),
            Os = "linux",
            Config = runtime,
            RootFs = new RootFs { DiffIds = layers.Select(l => l.Written.DiffId).ToList() },
            History = layers.Select(l => new HistoryEntry { Created = created, CreatedBy = options.CreatedBy, Comment = l.HistoryComment }).ToList(),
        };
        if (options.BaseImageConfig is { } baseImage)
        {
            // What the source image's config had beyond what a build decides (os.version, author,
            // variant, ...) is kept; rootfs and history are the new image's own.
            if (baseImage.Architecture == config.Architecture) config.Variant ??= baseImage.Variant;
            config.Extra = baseImage.Extra;
        }
        // The variant OCI defines for the architecture (arm64: v8), so index entries and
        // runtimes that match on it find the image.
        config.Variant ??= Architectures.TryFind(config.Architecture)?.Variant;
        var configBytes = OciJson.Serialize(config);
        var configDescriptor = new Descriptor { MediaType = MediaTypes.ImageConfig, Digest = Digest.Sha256(configBytes), Size = configBytes.Length };
        destination.PutBlob(configDescriptor, BlobContent.FromBytes(configBytes));
        var compression = LayerAnnotations.Compression(options);
        var manifest = new ImageManifest
        {
            Config = configDescriptor,
            Layers = layers.Select(l =>
            {
                var d = l.Written.Descriptor;
                var annotations = new SortedDictionary<string, string>(d.Annotations ?? new SortedDictionary<string, string>(StringComparer.Ordinal), StringComparer.Ordinal);
                foreach (var (k, v) in l.Annotations) annotations[k] = v;
                // How the tar became this blob, so a client that rebuilds the tar (from a delta) can make the blob again.
                annotations[Annotations.Compression] = compression;
                return new Descriptor { MediaType = d.MediaType, Digest = d.Digest, Size = d.Size, Annotations = annotations };
            }).ToList(),
            Annotations = options.Annotations.Count > 0
                ? new SortedDictionary<string, string>(options.Annotations.ToDictionary(), StringComparer.Ordinal)
                : null,
        };
        var manifestBytes = OciJson.Serialize(manifest);
        var manifestDescriptor = new Descriptor { MediaType = MediaTypes.ImageManifest, Digest = Digest.Sha256(manifestBytes), Size = manifestBytes.Length };
        destination.PutManifest(manifestDescriptor, manifestBytes);
        destination.Tag(new Descriptor
        {
            MediaType = manifestDescriptor.MediaType, Digest = manifestDescriptor.Digest, Size = manifestDescriptor.Size,
            Platform = new Platform { Architecture = config.Architecture, Os = "linux", Variant = config.Variant },
        }, options.Tag ?? "latest");
        return (manifestDescriptor, manifest, config);
    }
}
