using Treechunk.Oci;
using Treechunk.Registry;
using Treechunk.Transports;

namespace Treechunk.Delta;

/// <summary>A delta artifact as found or written: its descriptor, stored bytes and parsed form.</summary>
public sealed record FoundDeltas(Descriptor Descriptor, byte[] Raw, ImageManifest Manifest, List<DeltaEntry> Entries, string Origin);

/// <summary>
/// Where the delta artifact of an image lives: beside it, in the same registry repository or the
/// same layout or archive. A registry with the referrers API finds it by the subject; one
/// without (distribution 2.8), a layout and an archive have it at tag <c>sha256-HEX.delta</c>.
/// </summary>
public static class DeltaStore
{
    /// <summary>The delta artifact of the manifest <paramref name="manifestDigest"/> in <paramref name="source"/>, or null when it has none.</summary>
    public static FoundDeltas? Find(IImageSource source, string manifestDigest, Action<string>? log = null)
    {
        var tag = DeltaArtifact.Tag(manifestDigest);
        Descriptor? d = null;
        byte[]? raw = null;
        string origin = $"tag {tag}";
        if (source is RegistrySource registry)
        {
            var referrers = registry.Client.Referrers(manifestDigest);
            var referrer = referrers?.Manifests.FirstOrDefault(m => m.ArtifactType == DeltaArtifact.ArtifactType);
            if (referrer != null)
            {
                d = referrer;
                raw = source.ReadManifest(referrer);
                origin = $"referrer {referrer.Digest}";
            }
            else if (registry.Client.GetManifest(tag) is { } got)
            {
                d = new Descriptor { MediaType = got.MediaType, Digest = got.Digest, Size = got.Bytes.Length };
                raw = got.Bytes;
                if (Digest.Sha256(raw) != got.Digest) throw new TreechunkException($"{source.Name}: tag {tag} answered bytes that are not {got.Digest}", ExitCodes.VerificationFailed);
            }
        }
        else
        {
            var index = source switch { OciLayoutSource l => l.Index, OciArchiveSource a => a.Index, _ => null };
            d = index?.Manifests.FirstOrDefault(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == tag);
            if (d != null) raw = source.ReadManifest(d);
        }
        if (d == null || raw == null)
        {
            log?.Invoke($"deltas: {source.Name} has none for {manifestDigest} (no referrer, no tag {tag})");
            return null;
        }
        if (!MediaTypes.IsManifest(d.MediaType)) throw new TreechunkException($"{source.Name}: {origin} holds a {d.MediaType}, not a delta artifact");
        var manifest = OciJson.Deserialize<ImageManifest>(raw, $"delta artifact {d.Digest}");
        if (manifest.Subject?.Digest != manifestDigest)
            throw new TreechunkException($"{source.Name}: the delta artifact at {origin} is for {manifest.Subject?.Digest ?? "no image"}, not {manifestDigest}");
        return new FoundDeltas(d, raw, manifest, DeltaArtifact.Entries(manifest, $"delta artifact {d.Digest}"), origin);
    }

    /// <summary>
    /// Writes an artifact (its blobs are files) beside its subject in <paramref name="where"/>:
    /// in a registry with the referrers API untagged (the registry indexes it by its subject),
    /// elsewhere at tag <c>sha256-HEX.delta</c>, replacing what was there. Returns where it went.
    /// </summary>
    public static string Write(ImageReference where, Descriptor artifact, byte[] raw, IReadOnlyList<(Descriptor Descriptor, string Path)> blobs)
    {
        var subject = OciJson.Deserialize<ImageManifest>(raw, "delta artifact").Subject
                      ?? throw new InvalidOperationException("a delta artifact has a subject");
        string? tag = DeltaArtifact.Tag(subject.Digest);
        if (where is DockerReference docker && (docker.Context ?? RegistryContext.Default).Client(docker.Name).Referrers(subject.Digest) != null)
            tag = null;
        using (var destination = where.OpenDestination(force: false))
        {
            var config = DeltaArtifact.EmptyConfigDescriptor();
            if (!destination.HasBlob(config)) destination.PutBlob(config, BlobContent.FromBytes(DeltaArtifact.EmptyConfig));
            foreach (var (d, path) in blobs)
                if (!destination.HasBlob(d)) destination.PutBlob(d, BlobContent.FromFile(path));
            destination.PutManifest(artifact, raw);
            // An untagged artifact in a layout would count as one more image; there it is always tagged.
            if (tag != null) destination.Tag(artifact, tag);
            destination.Commit();
        }
        return tag != null ? $"tag {tag}" : $"referrer {artifact.Digest}";
    }
}
