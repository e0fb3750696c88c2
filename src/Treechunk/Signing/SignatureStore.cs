using Treechunk.Oci;
using Treechunk.Registry;
using Treechunk.Transports;

namespace Treechunk.Signing;

/// <summary>
/// Where an image's signatures live and how they are read and written: beside the image, in the
/// same registry repository or the same layout or archive, as cosign and skopeo keep them (a
/// manifest at tag <c>sha256-HEX.sig</c>, or OCI 1.1 referrers). Reads go through the image model
/// (every manifest and blob checked against its digest); writes through an image destination, so
/// a layout or archive keeps its other images and a registry push is ordinary.
/// </summary>
public sealed class SignatureStore : IDisposable
{
    private readonly ImageReference _reference;
    private IImageSource? _source;

    public SignatureStore(ImageReference reference)
    {
        if (reference is ChunkDirectoryReference)
            throw new TreechunkException($"{reference}: a chunk directory holds one image and no signatures (sign the registry image or a layout)");
        _reference = reference;
    }

    public string Name => _reference.ToString();

    /// <summary>The repository a signature names for images here: HOST/REPO for a registry, null for a local layout or archive (which has none).</summary>
    public string? Repository => (_reference as DockerReference)?.Name.ToString();

    public bool IsRegistry => _reference is DockerReference;

    /// <summary>The tag cosign and skopeo keep signatures of a manifest under: <c>sha256-HEX.sig</c>.</summary>
    public static string SignatureTag(string digest) => "sha256-" + Digest.Hex(digest) + ".sig";

    /// <summary>The OCI referrers tag scheme's tag for a manifest without the referrers API: <c>sha256-HEX</c>.</summary>
    public static string ReferrersTag(string digest) => "sha256-" + Digest.Hex(digest);

    private IImageSource Source => _source ??= _reference.OpenSource();

    /// <summary>Drops what was read, so reads after a write see it.</summary>
    private void Reopen()
    {
        _source?.Dispose();
        _source = null;
    }

    /// <summary>The top-level descriptor the reference names (the digest a signature is over).</summary>
    public Descriptor ResolveImage() => Source.Resolve(_reference.Tag, _reference.Digest);

    /// <summary>The manifest or index at <paramref name="tag"/> with its bytes, or null when nothing has that tag.</summary>
    public (Descriptor Descriptor, byte[] Raw)? ReadTag(string tag)
    {
        if (_reference is DockerReference docker)
        {
            var client = (docker.Context ?? RegistryContext.Default).Client(docker.Name);
            if (client.GetManifest(tag) is not { } got) return null;
            return (new Descriptor { MediaType = got.MediaType, Digest = got.Digest, Size = got.Bytes.Length }, got.Bytes);
        }
        var index = Source switch
        {
            OciLayoutSource layout => layout.Index,
            OciArchiveSource archive => archive.Index,
            _ => null,
        };
        var d = index?.Manifests.FirstOrDefault(m => m.Annotations?.GetValueOrDefault(Annotations.RefName) == tag);
        return d == null ? null : (d, Source.ReadManifest(d));
    }

    /// <summary>The referrers of a manifest from the registry's API; null where there is none (layouts, archives, older registries).</summary>
    public ImageIndex? ReferrersFromApi(string digest)
    {
        if (_reference is not DockerReference docker) return null;
        return (docker.Context ?? RegistryContext.Default).Client(docker.Name).Referrers(digest);
    }

    public byte[] ReadManifest(Descriptor d) => Source.ReadManifest(d);

    /// <summary>A small blob (a payload, a config), checked against its digest.</summary>
    public byte[] ReadBlob(Descriptor d, string what) =>
        VerifyingStream.ReadAll(Source.OpenBlob(d), d, what, 4 << 20);

    /// <summary>Writes blobs and one manifest or index, tagged (or untagged when <paramref name="tag"/> is null), in one commit.</summary>
    public void Write(IEnumerable<(Descriptor Descriptor, byte[] Bytes)> blobs, IEnumerable<(Descriptor Descriptor, byte[] Raw, string? Tag)> manifests)
    {
        Reopen();
        using (var destination = _reference.OpenDestination(force: false))
        {
            foreach (var (d, bytes) in blobs)
                if (!destination.HasBlob(d)) destination.PutBlob(d, BlobContent.FromBytes(bytes));
            foreach (var (d, raw, tag) in manifests)
            {
                destination.PutManifest(d, raw);
                // An untagged manifest (a referrer) is not listed in a layout's index, where it
                // would count as one more image: the referrers index at sha256-HEX leads to it.
                // A registry stores every manifest put, tagged or not.
                if (tag != null) destination.Tag(d, tag);
            }
            destination.Commit();
        }
        Reopen();
    }

    /// <summary>
    /// The signatures a layout or archive keeps beside an image, to be carried along when the
    /// image is copied: the manifest at <c>sha256-HEX.sig</c> and the referrers index at
    /// <c>sha256-HEX</c>, of the image and, for an index, of each manifest it lists. Other
    /// sources (registries) have none here: skopeo, too, copies a registry's attachments only
    /// when told to.
    /// </summary>
    public static List<(Descriptor Descriptor, string Tag)> LocalAttachments(IImageSource source, Descriptor top)
    {
        var index = source switch
        {
            OciLayoutSource layout => layout.Index,
            OciArchiveSource archive => archive.Index,
            _ => null,
        };
        if (index == null) return [];
        var tagged = new Dictionary<string, Descriptor>(StringComparer.Ordinal);
        foreach (var m in index.Manifests)
            if (m.Annotations?.GetValueOrDefault(Annotations.RefName) is { } t) tagged.TryAdd(t, m);
        var digests = new List<string> { top.Digest };
        if (MediaTypes.IsIndex(top.MediaType))
            digests.AddRange(OciJson.Deserialize<ImageIndex>(source.ReadManifest(top), $"index {top.Digest}").Manifests.Select(m => m.Digest));
        var found = new List<(Descriptor, string)>();
        foreach (var digest in digests.Distinct())
            foreach (var tag in new[] { SignatureTag(digest), ReferrersTag(digest) })
                if (tagged.TryGetValue(tag, out var d)) found.Add((d, tag));
        return found;
    }

    public void Dispose() => _source?.Dispose();
}
