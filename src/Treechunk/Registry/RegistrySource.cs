using System.Collections.Concurrent;
using Treechunk.Oci;

namespace Treechunk.Registry;

/// <summary>
/// A registry repository as an image source. Manifests are fetched once and checked against
/// the digest they are asked for; a tag resolves on the first mirror (registries.conf) that has
/// it, else on the registry itself, and blobs come from wherever the manifest came from. Blob
/// reads resume with Range after a broken connection; what they deliver is checked by the
/// reader, as for every source.
/// </summary>
public sealed class RegistrySource : IImageSource
{
    private readonly RegistryContext _ctx;
    private readonly RegistryName _name;
    private readonly ConcurrentDictionary<string, byte[]> _manifests = new(StringComparer.Ordinal);
    private RegistryClient _client;

    public string Name => $"docker://{_name}";
    /// <summary>The client of the repository the image was found in (a mirror's, when one answered).</summary>
    public RegistryClient Client => _client;

    public RegistrySource(RegistryContext ctx, RegistryName name)
    {
        _ctx = ctx;
        _name = name;
        _client = ctx.Client(name);
    }

    public Descriptor Resolve(string? tag, string? digest)
    {
        var reference = digest ?? tag ?? "latest";
        var mirrors = _ctx.SettingsFor(_name.Host, _name.Repository)?.Mirrors ?? [];
        (byte[] Bytes, string MediaType, string Digest)? found = null;
        foreach (var mirror in mirrors)
        {
            var client = _ctx.Client(_name, RegistryName.ParseHost(mirror));
            try
            {
                found = client.GetManifest(reference);
            }
            catch (TreechunkException e)
            {
                _ctx.Log?.Invoke($"mirror {mirror}: {e.Message}");
                continue;
            }
            if (found != null)
            {
                _client = client;
                break;
            }
        }
        found ??= _client.GetManifest(reference)
                  ?? throw new TreechunkException($"{Name}: no manifest {(digest != null ? "with digest " + digest : "tagged " + (tag ?? "latest"))} (see treechunk oci tags docker://{_name})");
        var (bytes, mediaType, actual) = found.Value;
        if (digest != null && actual != digest)
            throw new TreechunkException($"{Name}: the registry answered a manifest with digest {actual} for {digest}", ExitCodes.VerificationFailed);
        if (!MediaTypes.IsIndex(mediaType) && !MediaTypes.IsManifest(mediaType))
            throw new TreechunkException($"{Name}: {reference} has media type '{mediaType}', which is neither a manifest nor an index");
        _manifests[actual] = bytes;
        return new Descriptor { MediaType = mediaType, Digest = actual, Size = bytes.Length };
    }

    public byte[] ReadManifest(Descriptor d)
    {
        if (!_manifests.TryGetValue(d.Digest, out var bytes))
        {
            var got = _client.GetManifest(d.Digest) ?? throw new TreechunkException($"{Name}: manifest {d.Digest} is not in the repository", ExitCodes.VerificationFailed);
            bytes = got.Bytes;
        }
        var what = MediaTypes.IsIndex(d.MediaType) ? "index" : "manifest";
        if (Digest.Sha256(bytes) != d.Digest || bytes.Length != d.Size)
            throw new TreechunkException($"{what} {d.Digest} is corrupt: the registry answered {bytes.Length} bytes with digest {Digest.Sha256(bytes)} (expected {d.Size} bytes)", ExitCodes.VerificationFailed);
        _manifests[d.Digest] = bytes;
        if (MediaTypes.IsManifest(d.MediaType)) RememberBlobs(bytes);
        return bytes;
    }

    /// <summary>The repository has every blob its manifests name: a push elsewhere on the same registry can mount them.</summary>
    private void RememberBlobs(byte[] manifest)
    {
        try
        {
            var m = OciJson.Deserialize<ImageManifest>(manifest, "manifest");
            foreach (var blob in m.Layers.Append(m.Config))
                if (blob.Digest.Length > 0) _ctx.Locations.Seen(_client.Endpoint, blob.Digest, _name.Repository);
        }
        catch (TreechunkException) { /* not ours to judge here; the reader reports a bad manifest */ }
    }

    public Stream OpenBlob(Descriptor d)
    {
        _ctx.Stats.Downloaded();
        return _client.OpenBlob(d);
    }

    public Stream OpenBlobRange(Descriptor d, long offset, long length) => _client.OpenBlob(d, offset, length);

    public void Dispose() { }
}
