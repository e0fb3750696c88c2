using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Tar;
using Treechunk.Trees;

namespace Treechunk.Runtimes;

/// <summary>One layer of a docker-archive: the image's layer and the blob the archive holds for it.</summary>
public sealed record ArchiveLayer(Layer Source, Descriptor Blob, bool Recompressed);

/// <summary>
/// A docker-archive (what <c>docker save</c> writes: <c>manifest.json</c> with Config, RepoTags
/// and the layer list, <c>repositories</c>, the config and the layer tars) that also is an OCI layout
/// (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/</c>), as docker 25 and podman write it:
/// the two views share the blob files (manifest.json names <c>blobs/sha256/HEX</c>), so engines
/// that read either format load it. Streamed in one pass to any stream (a file, podman's stdin,
/// an HTTP request body): nothing is staged on disk.
///
/// docker-archive cannot hold zstd layers (Docker 20.10 cannot decompress them), so zstd and
/// zstd:chunked layers are recompressed to gzip: once when the archive is planned, to learn
/// the new blob's size and digest (a tar header needs the size before the content), and again
/// while it streams, checked to give the same bytes (gzip of the same tar at one level is
/// deterministic). The diff_ids, hence the config, are unchanged; the layer digests, hence the
/// OCI view's manifest, are new.
/// </summary>
public sealed class DockerArchive
{
    /// <summary>The gzip level of recompressed layers (the build's default).</summary>
    public const int GzipLevel = 6;

    private const int CopyBuffer = 1 << 17;

    public Image Image { get; }
    /// <summary>The name the engine tags the image with (<c>HOST/REPO:TAG</c>), or null for none.</summary>
    public string? RepoTag { get; }
    public IReadOnlyList<ArchiveLayer> LayerBlobs { get; }
    /// <summary>The manifest of the OCI view: the image's own (digest kept) unless layers were recompressed.</summary>
    public Descriptor ManifestDescriptor { get; }
    public byte[] RawManifest { get; }
    public int RecompressedLayers => LayerBlobs.Count(l => l.Recompressed);

    private DockerArchive(Image image, string? repoTag, List<ArchiveLayer> layers, Descriptor manifest, byte[] rawManifest)
    {
        Image = image;
        RepoTag = repoTag;
        LayerBlobs = layers;
        ManifestDescriptor = manifest;
        RawManifest = rawManifest;
    }

    public static bool NeedsRecompression(Descriptor layer) =>
        layer.MediaType.EndsWith("+zstd", StringComparison.Ordinal) || layer.MediaType.EndsWith(".tar.zstd", StringComparison.Ordinal);

    /// <summary>
    /// Plans the archive of <paramref name="image"/>: zstd layers are recompressed once (in
    /// parallel) to learn their gzip blobs; everything else is taken as it is.
    /// </summary>
    /// <param name="repoTag">The name the loaded image gets (<c>HOST/REPO:TAG</c>), or null.</param>
    public static DockerArchive Plan(Image image, string? repoTag, Action<string>? log = null)
    {
        if (!MediaTypes.IsImageConfig(image.Manifest.Config.MediaType))
            throw new TreechunkException($"{image.Name} is not a container image (config media type {image.Manifest.Config.MediaType}): engines cannot load it");
        var blobs = new Descriptor[image.Layers.Count];
        bool docker = image.Descriptor.MediaType == MediaTypes.DockerManifest;
        var gzipType = docker ? MediaTypes.DockerLayerGzip : MediaTypes.LayerGzip;
        var recompress = image.Layers.Where(l => NeedsRecompression(l.Descriptor)).ToList();
        // Equal layers (same digest) are recompressed once.
        var planned = new System.Collections.Concurrent.ConcurrentDictionary<string, (string Digest, long Size)>(StringComparer.Ordinal);
        Parallel.ForEach(recompress.DistinctBy(l => l.Descriptor.Digest), new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, layer =>
        {
            log?.Invoke($"recompressing layer {layer.Index} ({layer.Descriptor.Digest}) to gzip to learn its size");
            var sink = new HashingSink(Stream.Null);
            Recompress(layer, sink);
            planned[layer.Descriptor.Digest] = (sink.Digest, sink.Count);
        });
        var layers = new List<ArchiveLayer>();
        foreach (var layer in image.Layers)
        {
            if (!NeedsRecompression(layer.Descriptor))
            {
                layers.Add(new ArchiveLayer(layer, layer.Descriptor, false));
                continue;
            }
            var (digest, size) = planned[layer.Descriptor.Digest];
            var annotations = layer.Descriptor.Annotations?
                .Where(kv => !kv.Key.StartsWith("io.github.containers.zstd-chunked.", StringComparison.Ordinal) &&
                             !kv.Key.StartsWith("io.containers.zstd-chunked.", StringComparison.Ordinal))
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            layers.Add(new ArchiveLayer(layer, new Descriptor
            {
                MediaType = gzipType,
                Digest = digest,
                Size = size,
                Annotations = annotations is { Count: > 0 } ? new SortedDictionary<string, string>(annotations, StringComparer.Ordinal) : null,
            }, true));
        }

        Descriptor manifestDescriptor;
        byte[] rawManifest;
        if (layers.All(l => !l.Recompressed))
        {
            rawManifest = image.RawManifest;
            manifestDescriptor = new Descriptor { MediaType = image.Descriptor.MediaType, Digest = image.Descriptor.Digest, Size = image.Descriptor.Size };
        }
        else
        {
            var manifest = OciJson.Deserialize<ImageManifest>(image.RawManifest, "manifest");
            manifest.Layers = layers.Select(l => l.Blob).ToList();
            rawManifest = OciJson.Serialize(manifest);
            manifestDescriptor = new Descriptor
            {
                MediaType = image.Descriptor.MediaType,
                Digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(rawManifest)),
                Size = rawManifest.Length,
            };
        }
        return new DockerArchive(image, repoTag, layers, manifestDescriptor, rawManifest);
    }

    private static string BlobPath(string digest) => "blobs/sha256/" + Digest.Hex(digest);

    /// <summary>docker save's manifest.json.</summary>
    public byte[] DockerManifestJson() => Json(new JsonArray(new JsonObject
    {
        ["Config"] = BlobPath(Image.Manifest.Config.Digest),
        ["RepoTags"] = new JsonArray(RepoTag != null ? [JsonValue.Create(RepoTag)] : Array.Empty<JsonNode>()),
        ["Layers"] = new JsonArray(LayerBlobs.Select(l => (JsonNode)JsonValue.Create(BlobPath(l.Blob.Digest))!).ToArray()),
    }));

    /// <summary>The legacy <c>repositories</c> file: name -> tag -> the top layer's id (docker 25 writes the top layer blob's hex).</summary>
    public byte[] RepositoriesJson()
    {
        var root = new JsonObject();
        if (RepoTag != null && LayerBlobs.Count > 0)
        {
            int colon = RepoTag.LastIndexOf(':');
            root[RepoTag[..colon]] = new JsonObject { [RepoTag[(colon + 1)..]] = Digest.Hex(LayerBlobs[^1].Blob.Digest) };
        }
        return Json(root);
    }

    /// <summary>The OCI view's index.json: the manifest, named as docker 25 and containerd name it.</summary>
    public byte[] IndexJson()
    {
        var d = new Descriptor { MediaType = ManifestDescriptor.MediaType, Digest = ManifestDescriptor.Digest, Size = ManifestDescriptor.Size };
        if (RepoTag != null)
            d.Annotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
            {
                // podman reads io.containerd.image.name first, then ref.name (a bare tag here, as docker writes it).
                ["io.containerd.image.name"] = RepoTag,
                [Annotations.RefName] = RepoTag[(RepoTag.LastIndexOf(':') + 1)..],
            };
        return OciJson.Serialize(new ImageIndex { Manifests = [d] });
    }

    private static byte[] Json(JsonNode node) => Encoding.UTF8.GetBytes(node.ToJsonString());

    /// <summary>
    /// Streams the archive to <paramref name="output"/> (left open): members sorted by name, fixed
    /// owners, modes and times, so the same image gives the same bytes. Every blob is checked
    /// while it streams (a source blob against its digest, a recompressed one against the plan).
    /// Returns the bytes written.
    /// </summary>
    public long WriteTo(Stream output, ITransferProgress? progress = null)
    {
        var counted = new HashingSink(output, hash: false);
        var members = new SortedDictionary<string, Action<PaxTarWriter, string>>(StringComparer.Ordinal);
        void Bytes(string name, byte[] data) => members[name] = (tar, path) => tar.WriteFile(path, data);
        Bytes(OciLayout.LayoutFile, OciLayout.LayoutFileContent);
        Bytes(OciLayout.IndexFile, IndexJson());
        Bytes("manifest.json", DockerManifestJson());
        Bytes("repositories", RepositoriesJson());
        Bytes(BlobPath(Image.Manifest.Config.Digest), Image.RawConfig);
        Bytes(BlobPath(ManifestDescriptor.Digest), RawManifest);
        foreach (var layer in LayerBlobs)
        {
            var l = layer;
            members.TryAdd(BlobPath(l.Blob.Digest), (tar, path) => WriteLayer(tar, counted, path, l, progress));
        }
        using (var tar = new PaxTarWriter(counted, 0))
        {
            var dirs = new SortedSet<string>(members.Keys.SelectMany(TreePaths.Ancestors), StringComparer.Ordinal);
            foreach (var path in dirs.Concat(members.Keys).Order(StringComparer.Ordinal))
            {
                if (dirs.Contains(path)) tar.Write(new TreeEntry { Path = path, Type = EntryType.Directory, Mode = 0x1ED }, null);
                else members[path](tar, path);
            }
            tar.Finish();
        }
        counted.Flush();
        return counted.Count;
    }

    private static void WriteLayer(PaxTarWriter tar, Stream output, string path, ArchiveLayer layer, ITransferProgress? progress)
    {
        var blob = layer.Blob;
        progress?.BlobStarted(blob);
        long size = tar.WriteHeader(new TreeEntry { Path = path, Type = EntryType.Regular, Mode = 0x1A4, Size = blob.Size });
        var sink = new HashingSink(output, hash: layer.Recompressed, onWrite: n => progress?.BlobProgress(blob, n), limit: size);
        if (layer.Recompressed)
        {
            Recompress(layer.Source, sink);
            var digest = sink.Digest;
            if (sink.Count != size || digest != blob.Digest)
                throw new TreechunkException($"layer {layer.Source.Index}: recompressing {layer.Source.Descriptor.Digest} to gzip gave {digest} ({sink.Count} bytes) the second time, not {blob.Digest} ({size} bytes)", ExitCodes.InternalError);
        }
        else
        {
            // Read to the end: the verifying stream checks size and digest there.
            using var source = layer.Source.OpenCompressed();
            var buffer = new byte[CopyBuffer];
            int n;
            while ((n = source.Read(buffer)) > 0) sink.Write(buffer.AsSpan(0, n));
            if (sink.Count != size) throw new TreechunkException($"layer blob {blob.Digest} has {sink.Count} bytes, not {size}", ExitCodes.VerificationFailed);
        }
        output.Write(PaxTarWriter.Padding(size));
        progress?.BlobDone(blob, skipped: false);
    }

    private static void Recompress(Layer layer, Stream sink)
    {
        using var tar = layer.OpenUncompressed();
        using var gzip = LayerCompression.Compress(sink, Compression.Gzip, GzipLevel);
        var buffer = new byte[CopyBuffer];
        int n;
        while ((n = tar.Read(buffer)) > 0) gzip.Write(buffer, 0, n);
    }

    /// <summary>Writes through, counting (and hashing) what passes; refuses to go past a limit.</summary>
    private sealed class HashingSink(Stream inner, bool hash = true, Action<int>? onWrite = null, long limit = long.MaxValue) : WriteOnlyStream
    {
        private readonly IncrementalHash? _hash = hash ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        public long Count { get; private set; }
        public string Digest => "sha256:" + Convert.ToHexStringLower(_hash!.GetCurrentHash());

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Count + buffer.Length > limit)
                throw new TreechunkException($"a blob of the archive came out larger than the {limit} bytes planned", ExitCodes.InternalError);
            inner.Write(buffer);
            _hash?.AppendData(buffer);
            Count += buffer.Length;
            onWrite?.Invoke(buffer.Length);
        }

        public override void Flush() => inner.Flush();
    }
}
