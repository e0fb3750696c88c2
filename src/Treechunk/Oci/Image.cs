using Treechunk.IO;
using ZstdSharp;

namespace Treechunk.Oci;

/// <summary>
/// One image, read from any <see cref="IImageSource"/>: its manifest and config as stored (raw
/// bytes, digest-checked) and parsed, and its layers. In the spirit of go-containerregistry's
/// v1.Image: everything that reads an image (inspect, verify, extract, flatten, import, copy)
/// works on this, so a new transport is only a new source.
/// </summary>
public sealed class Image : IDisposable
{
    private bool _ownsSource;

    public IImageSource Source { get; private init; } = null!;
    /// <summary>The manifest's descriptor (from the index that listed it, with its platform and annotations).</summary>
    public Descriptor Descriptor { get; private init; } = null!;
    /// <summary>The index the reference named when the image was picked from one by platform, else null.</summary>
    public Descriptor? IndexDescriptor { get; private init; }
    public byte[] RawManifest { get; private init; } = null!;
    public ImageManifest Manifest { get; private init; } = null!;
    public byte[] RawConfig { get; private init; } = null!;
    public ImageConfig Config { get; private init; } = null!;
    public IReadOnlyList<Layer> Layers => _layers ??= Manifest.Layers.Select((l, i) => new Layer(this, i, l, Config.RootFs.DiffIds[i])).ToList();
    private List<Layer>? _layers;
    public string Name => Source.Name;

    private Image() { }

    /// <summary>
    /// Opens the image <paramref name="top"/> names: a manifest, or an index from which the
    /// manifest for <paramref name="platform"/> (default: this host's architecture) is picked.
    /// </summary>
    /// <param name="ownsSource">Dispose the source with the image.</param>
    public static Image Open(IImageSource source, Descriptor top, Platform? platform = null, bool ownsSource = false)
    {
        Descriptor chosen = top;
        Descriptor? index = null;
        var raw = source.ReadManifest(chosen);
        for (int depth = 0; MediaTypes.IsIndex(chosen.MediaType); depth++)
        {
            if (depth >= 4) throw new TreechunkException($"{source.Name}: index nesting too deep");
            index ??= chosen;
            var nested = OciJson.Deserialize<ImageIndex>(raw, $"index {chosen.Digest}");
            chosen = PickPlatform(nested, platform) ?? throw new TreechunkException($"index {chosen.Digest} has no image manifest");
            raw = source.ReadManifest(chosen);
        }
        if (!MediaTypes.IsManifest(chosen.MediaType))
            throw new TreechunkException($"{source.Name}: descriptor {chosen.Digest} has unsupported media type '{chosen.MediaType}'");
        var manifest = OciJson.Deserialize<ImageManifest>(raw, $"manifest {chosen.Digest}");
        if (manifest.SchemaVersion != 2) throw new TreechunkException($"manifest {chosen.Digest}: unsupported schemaVersion {manifest.SchemaVersion}");
        if (string.IsNullOrEmpty(manifest.Config.Digest)) throw new TreechunkException($"manifest {chosen.Digest} has no config");
        if (!MediaTypes.IsImageConfig(manifest.Config.MediaType))
            throw new TreechunkException($"manifest {chosen.Digest} is an artifact ({manifest.ArtifactType ?? manifest.Config.MediaType}), not an image (use oci copy to move it)");
        foreach (var l in manifest.Layers) Digest.Hex(l.Digest);
        var rawConfig = source.ReadBlob(manifest.Config, "config");
        var config = OciJson.Deserialize<ImageConfig>(rawConfig, $"config {manifest.Config.Digest}");
        if (config.RootFs.DiffIds.Count != manifest.Layers.Count)
            throw new TreechunkException($"image {chosen.Digest}: config lists {config.RootFs.DiffIds.Count} diff_ids for {manifest.Layers.Count} layers", ExitCodes.VerificationFailed);
        return new Image
        {
            Source = source, _ownsSource = ownsSource, Descriptor = chosen, IndexDescriptor = index,
            RawManifest = raw, Manifest = manifest, RawConfig = rawConfig, Config = config,
        };
    }

    /// <summary>The manifest of an index for a platform: matching os, architecture (and variant when asked); else the first image manifest.</summary>
    public static Descriptor? PickPlatform(ImageIndex index, Platform? platform)
    {
        var arch = platform?.Architecture is { Length: > 0 } a ? a : Platforms.HostArchitecture;
        var os = platform?.Os is { Length: > 0 } o ? o : "linux";
        var manifests = index.Manifests.Where(m => MediaTypes.IsManifest(m.MediaType) || MediaTypes.IsIndex(m.MediaType)).ToList();
        return manifests.FirstOrDefault(m => m.Platform?.Architecture == arch && (m.Platform.Os ?? "linux") == os &&
                                             (platform?.Variant == null || m.Platform.Variant == platform.Variant))
               ?? manifests.FirstOrDefault(m => MediaTypes.IsManifest(m.MediaType));
    }

    public void Dispose()
    {
        if (_ownsSource) Source.Dispose();
    }
}

/// <summary>One layer of an <see cref="Image"/>: its blob, verified whenever it is read whole.</summary>
public sealed class Layer
{
    private readonly Image _image;
    public int Index { get; }
    public Descriptor Descriptor { get; }
    public string DiffId { get; }
    public string Name => $"layer {Descriptor.Digest}";
    /// <summary>Where the blob is read from (the image's source).</summary>
    public IImageSource Source => _image.Source;

    internal Layer(Image image, int index, Descriptor descriptor, string diffId)
    {
        _image = image;
        Index = index;
        Descriptor = descriptor;
        DiffId = diffId;
    }

    /// <summary>The blob as stored; reading it to the end checks its size and digest.</summary>
    public VerifyingStream OpenCompressed() => new(_image.Source.OpenBlob(Descriptor), Descriptor, "layer blob");

    /// <summary>
    /// The uncompressed tar. Its end is the end of the compressed blob (the rest is drained and
    /// checked). A decompression error is reported as corruption of the blob when the blob's
    /// digest is wrong, which is the truer diagnosis.
    /// </summary>
    public Stream OpenUncompressed() => new UncompressedLayerStream(this, OpenCompressed());

    /// <summary>Part of the blob (for partial reads); not verified here.</summary>
    public Stream OpenRange(long offset, long length) => _image.Source.OpenBlobRange(Descriptor, offset, length);

    private sealed class UncompressedLayerStream : ReadOnlyStream
    {
        private readonly Layer _layer;
        private readonly VerifyingStream _blob;
        private readonly Stream _tar;
        private bool _ended;

        public UncompressedLayerStream(Layer layer, VerifyingStream blob)
        {
            _layer = layer;
            _blob = blob;
            _tar = LayerCompression.Decompress(blob, layer.Descriptor.MediaType, leaveOpen: true);
        }

        public override int Read(Span<byte> buffer)
        {
            if (_ended) return 0;
            int n;
            try
            {
                n = _tar.Read(buffer);
                if (n == 0 && buffer.Length > 0)
                {
                    // The compressed stream may go on past the end of the data (padding, a
                    // trailing frame); it is part of the blob and of its digest.
                    _blob.CopyTo(Stream.Null);
                    _ended = true;
                }
            }
            catch (Exception e) when (e is InvalidDataException or ZstdException)
            {
                if (_blob.DrainAndCheck() is { } corrupt) throw new TreechunkException(corrupt, ExitCodes.VerificationFailed, e);
                throw new TreechunkException($"{_layer.Name}: corrupt compressed data ({e.Message})", ExitCodes.BadInput, e);
            }
            catch (IOException e)
            {
                throw new TreechunkException($"{_layer.Name}: {e.Message}", ExitCodes.EnvironmentError, e);
            }
            return n;
        }

        /// <summary>Called by readers that hit a problem of their own (a bad tar header): the blob's digest speaks first.</summary>
        public string? CheckBlob() => _blob.DrainAndCheck();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _tar.Dispose();
                _blob.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>What is wrong with the blob behind an uncompressed stream from <see cref="OpenUncompressed"/>, read to its end; null when nothing.</summary>
    public static string? CheckBlob(Stream uncompressed) => (uncompressed as UncompressedLayerStream)?.CheckBlob();
}
