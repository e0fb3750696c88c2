namespace Treechunk.Oci;

/// <summary>An image opened for reading: its layout, manifest and config, verified on the way in.</summary>
public sealed class OpenedImage : IDisposable
{
    private readonly TempDirectory? _unpacked;
    public ImageReference Reference { get; }
    public OciLayout Layout { get; }
    public Descriptor ManifestDescriptor { get; }
    public ImageManifest Manifest { get; }
    public ImageConfig Config { get; }

    private OpenedImage(ImageReference reference, OciLayout layout, Descriptor md, ImageManifest m, ImageConfig c, TempDirectory? unpacked)
    {
        Reference = reference;
        Layout = layout;
        ManifestDescriptor = md;
        Manifest = m;
        Config = c;
        _unpacked = unpacked;
    }

    public static OpenedImage Open(string reference) => Open(ImageReference.Parse(reference));

    public static OpenedImage Open(ImageReference reference)
    {
        TempDirectory? unpacked = null;
        try
        {
            string dir = reference.Path;
            if (reference.Transport == Transport.OciArchive)
            {
                unpacked = OciArchive.Unpack(reference.Path);
                dir = unpacked.Path;
            }
            else if (File.Exists(reference.Path))
                throw new TreechunkException($"{reference.Path} is a file, not an OCI layout directory (use oci-archive:{reference.Path})");
            var layout = OciLayout.Open(dir);
            var md = layout.ResolveManifest(reference.Tag);
            var manifest = layout.ReadManifest(md);
            var config = layout.ReadConfig(manifest);
            if (config.RootFs.DiffIds.Count != manifest.Layers.Count)
                throw new TreechunkException($"image {md.Digest}: config lists {config.RootFs.DiffIds.Count} diff_ids for {manifest.Layers.Count} layers", ExitCodes.VerificationFailed);
            return new OpenedImage(reference, layout, md, manifest, config, unpacked);
        }
        catch
        {
            unpacked?.Dispose();
            throw;
        }
    }

    public void Dispose() => _unpacked?.Dispose();
}
