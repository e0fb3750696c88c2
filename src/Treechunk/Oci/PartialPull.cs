namespace Treechunk.Oci;

/// <summary>What a partial pull of one layer fetches: the bytes, and how they were worked out.</summary>
/// <param name="Method">"layer": the whole blob (no table of contents to go by); "toc": from a zstd:chunked table of contents.</param>
public sealed record PartialPullEstimate(long Bytes, string Method);

/// <summary>
/// The seam for partial pulls: given the image a client already has and a layer of the new image
/// that it lacks, the bytes a partial pull of that layer fetches.
/// </summary>
public interface IPartialPullEstimator
{
    PartialPullEstimate Estimate(Image oldImage, Layer newLayer);
}

/// <summary>
/// Partial pull as <c>treechunk oci pull</c> does it: a zstd:chunked layer costs its trailer
/// (TOC, tar-split, footer), the header frames it cannot compress again and the content frames
/// whose content digest none of the old image's zstd:chunked layers has, in the same coalesced
/// ranges (<see cref="ZstdChunkedPull.Estimate"/> shares the pull's plan); any other layer is
/// fetched whole. Reading a TOC takes a few small range reads of the new layer and one of each
/// old zstd:chunked layer (once per old image).
/// </summary>
public sealed class TocPartialPull : IPartialPullEstimator
{
    private readonly Action<string>? _log;
    private readonly Dictionary<Image, ZstdChunkedPull> _indexes = new(ReferenceEqualityComparer.Instance);

    public TocPartialPull(Action<string>? log = null) => _log = log;

    public PartialPullEstimate Estimate(Image oldImage, Layer newLayer)
    {
        if (!ZstdChunked.IsChunked(newLayer.Descriptor)) return new(newLayer.Descriptor.Size, "layer");
        ZstdChunkedPull index;
        lock (_indexes)
            if (!_indexes.TryGetValue(oldImage, out index!))
                _indexes[oldImage] = index = ZstdChunkedPull.ForImage(oldImage, _log);
        var result = index.Estimate(newLayer.Source, newLayer.Descriptor, _log);
        return new(result.BytesFetched, "toc");
    }
}
