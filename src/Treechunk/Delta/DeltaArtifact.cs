using Treechunk.Oci;

namespace Treechunk.Delta;

/// <summary>An old layer a delta starts from: its blob (how a client finds it) and its tar (what the delta was made against).</summary>
public sealed record DeltaSource(string Digest, string MediaType, string DiffId);

/// <summary>
/// One delta of an artifact: applied to the concatenated tars of <see cref="From"/> it gives the
/// tar <see cref="ToDiffId"/> (<see cref="ToTarSize"/> bytes), which compressed again as the
/// layer's <c>org.treechunk.compression</c> annotation says is the blob <see cref="ToDigest"/>.
/// </summary>
public sealed record DeltaEntry(Descriptor Blob, IReadOnlyList<DeltaSource> From, string ToDigest, string ToDiffId, long ToTarSize);

/// <summary>
/// The delta artifact's format: an OCI 1.1 manifest with artifactType
/// <see cref="ArtifactType"/>, subject = the new image's manifest, the empty config, and one
/// layer per delta whose annotations say which old layers (blob digests, media types, diff_ids)
/// it is made from and which new layer (diff_id, digest, tar size) it makes. Registries with the
/// referrers API list it under the new image's digest; elsewhere (distribution 2.8, layouts,
/// archives) it sits at tag <c>sha256-HEX.delta</c>, which tools that do not know it ignore.
/// </summary>
public static class DeltaArtifact
{
    public const string ArtifactType = "application/vnd.treechunk.delta.v1+json";
    /// <summary>A zstd frame made with the old tars as its prefix (zstd --patch-from).</summary>
    public const string LayerMediaType = "application/vnd.treechunk.delta.layer.v1.zstd-patch";

    public const string FromDigests = "org.treechunk.delta.from-digests";
    public const string FromMediaTypes = "org.treechunk.delta.from-media-types";
    public const string FromDiffIds = "org.treechunk.delta.from-diff-ids";
    public const string ToDigest = "org.treechunk.delta.to-digest";
    public const string ToDiffId = "org.treechunk.delta.to-diff-id";
    public const string ToTarSize = "org.treechunk.delta.to-tar-size";
    /// <summary>On the manifest: the old image's manifest digest, for people reading it.</summary>
    public const string FromImage = "org.treechunk.delta.from-image";

    /// <summary>The tag a delta artifact of <paramref name="manifestDigest"/> is at where there is no referrers API.</summary>
    public static string Tag(string manifestDigest) => "sha256-" + Digest.Hex(manifestDigest) + ".delta";

    /// <summary>OCI's empty JSON object, the config of an artifact that has none.</summary>
    public static readonly byte[] EmptyConfig = "{}"u8.ToArray();

    public static Descriptor EmptyConfigDescriptor() =>
        new() { MediaType = MediaTypes.Empty, Digest = Digest.Sha256(EmptyConfig), Size = EmptyConfig.Length, Data = "e30=" };

    public static SortedDictionary<string, string> Annotate(IReadOnlyList<DeltaSource> from, string toDigest, string toDiffId, long toTarSize) =>
        new(StringComparer.Ordinal)
        {
            [FromDigests] = string.Join(",", from.Select(f => f.Digest)),
            [FromMediaTypes] = string.Join(",", from.Select(f => f.MediaType)),
            [FromDiffIds] = string.Join(",", from.Select(f => f.DiffId)),
            [ToDigest] = toDigest,
            [ToDiffId] = toDiffId,
            [ToTarSize] = toTarSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };

    /// <summary>The deltas a manifest holds; a layer that is not a well-formed delta is an error naming it.</summary>
    public static List<DeltaEntry> Entries(ImageManifest manifest, string what)
    {
        if (manifest.ArtifactType != ArtifactType) throw new TreechunkException($"{what} is not a delta artifact (artifactType {manifest.ArtifactType ?? "none"})");
        var result = new List<DeltaEntry>();
        foreach (var layer in manifest.Layers)
        {
            string Get(string key) => layer.Annotations?.GetValueOrDefault(key) is { Length: > 0 } v ? v
                : throw new TreechunkException($"{what}: delta {layer.Digest} has no {key} annotation");
            if (layer.MediaType != LayerMediaType) throw new TreechunkException($"{what}: delta {layer.Digest} has media type {layer.MediaType}, not {LayerMediaType}");
            Digest.Hex(layer.Digest);
            var digests = Get(FromDigests).Split(',');
            var types = Get(FromMediaTypes).Split(',');
            var diffIds = Get(FromDiffIds).Split(',');
            if (digests.Length != types.Length || digests.Length != diffIds.Length)
                throw new TreechunkException($"{what}: delta {layer.Digest} names {digests.Length} old blobs but {types.Length} media types and {diffIds.Length} diff_ids");
            foreach (var d in digests.Concat(diffIds)) Digest.Hex(d);
            if (!long.TryParse(Get(ToTarSize), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size))
                throw new TreechunkException($"{what}: delta {layer.Digest} has a bad {ToTarSize}");
            var to = Get(ToDigest);
            var toDiffId = Get(ToDiffId);
            Digest.Hex(to);
            Digest.Hex(toDiffId);
            result.Add(new DeltaEntry(layer, digests.Select((d, i) => new DeltaSource(d, types[i], diffIds[i])).ToList(), to, toDiffId, size));
        }
        return result;
    }
}
