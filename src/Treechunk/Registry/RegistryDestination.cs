using System.Collections.Concurrent;
using Treechunk.IO;
using Treechunk.Oci;

namespace Treechunk.Registry;

/// <summary>
/// A registry repository as an image destination. A blob the repository has (HEAD) is never
/// sent; one seen in another repository of the same registry is mounted; anything else is
/// uploaded, in one request or in resumable chunks. Layers a build compresses are staged in a
/// temp file first (a registry names blobs by digest, known only at the end). Manifests go up at
/// the commit, in the order they came (an index after its children, which the registry checks):
/// a tagged one by its tag alone, one request as skopeo makes, the others by digest unless the
/// repository has them. Until then no manifest names what the push left half done.
/// </summary>
public sealed class RegistryDestination : IImageDestination
{
    private readonly RegistryContext _ctx;
    private readonly RegistryName _name;
    private readonly RegistryClient _client;
    private readonly ConcurrentDictionary<string, (string MediaType, byte[] Bytes)> _manifests = new(StringComparer.Ordinal);
    private readonly List<string> _manifestOrder = [];
    /// <summary>Manifests a HEAD found in the repository, so the commit does not ask again.</summary>
    private readonly ConcurrentDictionary<string, bool> _manifestsPresent = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _present = new(StringComparer.Ordinal);
    private readonly List<(Descriptor Descriptor, string? Tag)> _tags = [];
    private readonly Lazy<TempDirectory> _staging = new(() => TempDirectory.Create("push"));

    public string Name => $"docker://{_name}";

    public RegistryDestination(RegistryContext ctx, RegistryName name)
    {
        _ctx = ctx;
        _name = name;
        _client = ctx.Client(name);
    }

    private long? ChunkSize => _ctx.UploadChunkSize ?? _ctx.SettingsFor(_name.Host, _name.Repository)?.UploadChunkSize;

    public bool HasBlob(Descriptor d)
    {
        if (_present.ContainsKey(d.Digest)) return true;
        // A blob of another size under the same digest is not the blob (and uploading settles it).
        if (_client.BlobSize(d.Digest) is not { } size || size != d.Size) return false;
        _present[d.Digest] = true;
        _ctx.Stats.Skipped();
        _ctx.Locations.Seen(_client.Endpoint, d.Digest, _name.Repository);
        return true;
    }

    public void PutBlob(Descriptor d, BlobContent content)
    {
        if (_present.ContainsKey(d.Digest)) return;
        Uri? started = null;
        if (_ctx.Locations.OtherRepository(_client.Endpoint, d.Digest, _name.Repository) is { } from)
        {
            var (mounted, upload) = _client.TryMount(d.Digest, from);
            if (mounted)
            {
                _ctx.Stats.Mounted();
                _ctx.Log?.Invoke($"mounted {d.Digest} from {from}");
                Done(d);
                return;
            }
            started = upload;
        }
        _client.Upload(d, content, ChunkSize, started);
        _ctx.Stats.Uploaded();
        Done(d);
    }

    private void Done(Descriptor d)
    {
        _present[d.Digest] = true;
        _ctx.Locations.Seen(_client.Endpoint, d.Digest, _name.Repository);
    }

    /// <summary>One HEAD of the manifest instead of one per blob: how a re-push of an unchanged image stays cheap.</summary>
    public bool HasCompleteImage(Descriptor manifest)
    {
        if (!_client.HasManifest(manifest.Digest)) return false;
        _manifestsPresent[manifest.Digest] = true;
        return true;
    }

    public IBlobWriter CreateBlob() => new StagedBlob(this, AtomicFile.CreateIn(_staging.Value.Path, "layer"));

    public void PutManifest(Descriptor d, ReadOnlySpan<byte> raw)
    {
        var bytes = raw.ToArray();
        if (Digest.Sha256(bytes) != d.Digest) throw new InvalidOperationException($"manifest bytes do not match descriptor {d.Digest}");
        if (_manifests.TryAdd(d.Digest, (d.MediaType, bytes)))
            lock (_manifestOrder) _manifestOrder.Add(d.Digest);
    }

    public void Tag(Descriptor d, string? tag)
    {
        lock (_tags) _tags.Add((d, tag));
    }

    public void Commit()
    {
        List<(Descriptor Descriptor, string? Tag)> tags;
        List<string> order;
        lock (_tags)
        {
            tags = _tags.ToList();
            _tags.Clear();
        }
        lock (_manifestOrder)
        {
            order = _manifestOrder.ToList();
            _manifestOrder.Clear();
        }
        foreach (var (d, _) in tags)
            if (!_manifests.ContainsKey(d.Digest)) throw new InvalidOperationException($"a tag names manifest {d.Digest}, which was not written");
        foreach (var digest in order)
        {
            var (mediaType, bytes) = _manifests[digest];
            var named = tags.Where(t => t.Descriptor.Digest == digest && t.Tag != null).Select(t => t.Tag!).Distinct(StringComparer.Ordinal).ToList();
            if (named.Count == 0)
            {
                if (!_manifestsPresent.ContainsKey(digest) && !_client.HasManifest(digest)) _client.PutManifest(digest, mediaType, bytes);
                continue;
            }
            foreach (var tag in named) _client.PutManifest(tag, mediaType, bytes);
        }
        _ctx.Locations.Save();
    }

    public void Dispose()
    {
        if (_staging.IsValueCreated) _staging.Value.Dispose();
    }

    /// <summary>A layer written to a temp file and uploaded once its digest is known.</summary>
    private sealed class StagedBlob(RegistryDestination owner, AtomicFile file) : IBlobWriter
    {
        public Stream Stream => file.Stream;

        public void Commit(string digest)
        {
            file.Stream.Flush();
            var size = file.Stream.Length;
            file.Stream.Dispose();
            var d = new Descriptor { Digest = digest, Size = size };
            if (!owner.HasBlob(d)) owner.PutBlob(d, BlobContent.FromFile(file.TempPath));
        }

        public void Dispose() => file.Dispose();
    }
}
