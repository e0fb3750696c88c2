namespace Treechunk.Oci;

/// <summary>What a partial pull of one layer fetches: the bytes, and how they were worked out.</summary>
/// <param name="Method">"layer": the whole blob (no table of contents to go by); "toc": from a zstd:chunked table of contents.</param>
public sealed record PartialPullEstimate(long Bytes, string Method);

/// <summary>
/// The seam for partial pulls: given the image a client already has and a layer of the new image
/// that it lacks, the bytes a partial pull of that layer fetches. A zstd:chunked implementation
/// reads the layer's table of contents and counts the byte ranges of files the old image lacks;
/// until one is plugged in, <see cref="LayerLevelPartialPull"/> counts whole layers.
/// </summary>
public interface IPartialPullEstimator
{
    PartialPullEstimate Estimate(Image oldImage, Layer newLayer);
}

/// <summary>Partial pull as a plain client does it: every missing layer is fetched whole, TOC or not.</summary>
public sealed class LayerLevelPartialPull : IPartialPullEstimator
{
    public static readonly LayerLevelPartialPull Instance = new();

    public PartialPullEstimate Estimate(Image oldImage, Layer newLayer) => new(newLayer.Descriptor.Size, "layer");
}

public static class ZstdChunkedAnnotations
{
    /// <summary>containers/storage's annotation locating a zstd:chunked layer's table of contents.</summary>
    public const string ManifestPosition = "io.github.containers.zstd-chunked.manifest-position";

    public static bool HasToc(Descriptor layer) => layer.Annotations?.ContainsKey(ManifestPosition) == true;
}
