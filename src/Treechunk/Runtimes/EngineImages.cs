using System.Text.RegularExpressions;
using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Registry;
using Treechunk.Transports;

namespace Treechunk.Runtimes;

/// <summary>
/// What an engine names a loaded image, and the image itself made local: a registry image is
/// pulled into a private layout first (verified, the one manifest only), so the archive streams
/// from local blobs.
/// </summary>
public static partial class EngineImages
{
    [GeneratedRegex(@"[^a-z0-9._-]+")]
    private static partial Regex NotNameChars();

    /// <summary>
    /// The name the reference gives an image in an engine: <c>HOST/REPO:TAG</c> for a registry
    /// image (no name when it is named by digest alone); for a local layout or archive
    /// <c>localhost/BASENAME:TAG</c>, the tag the reference's, else the index's ref.name, else latest.
    /// </summary>
    public static string? DefaultName(ImageReference reference, string? indexRefName)
    {
        if (reference is DockerReference d)
            return d.Tag != null ? $"{d.Name}:{d.Tag}" : d.Digest != null ? null : $"{d.Name}:latest";
        var path = System.IO.Path.GetFullPath(reference.Location).TrimEnd('/');
        var name = System.IO.Path.GetFileName(path);
        if (name.EndsWith(".tar", StringComparison.Ordinal)) name = name[..^4];
        name = NotNameChars().Replace(name.ToLowerInvariant(), "-").Trim('-', '.', '_');
        if (name.Length == 0) name = "image";
        var tag = reference.Tag ?? (indexRefName != null && RegistryName.ValidTag(indexRefName) ? indexRefName : "latest");
        return $"localhost/{name}:{tag}";
    }

    /// <summary>
    /// Applies --tag: a bare tag replaces the default name's tag; <c>[HOST/]REPO[:TAG]</c> is the
    /// whole name (a one-component repository gets <c>localhost/</c>, as podman names it).
    /// </summary>
    public static string Name(string? defaultName, string? tagOption)
    {
        if (tagOption == null)
            return defaultName ?? throw new TreechunkException("the image is named by digest only: give --tag NAME[:TAG] to name it in the engine");
        if (!tagOption.Contains('/') && !tagOption.Contains(':'))
        {
            if (!RegistryName.ValidTag(tagOption)) throw new TreechunkException($"invalid --tag '{tagOption}' (a tag, or NAME[:TAG])");
            if (defaultName == null) throw new TreechunkException($"--tag {tagOption}: the image is named by digest only, give --tag NAME:{tagOption}");
            return defaultName[..defaultName.LastIndexOf(':')] + ":" + tagOption;
        }
        var text = tagOption.Contains('/') ? tagOption : "localhost/" + tagOption;
        var (name, tag, digest) = RegistryName.Parse(text, "--tag");
        if (digest != null) throw new TreechunkException($"--tag '{tagOption}' names a digest; give NAME[:TAG]");
        return $"{name}:{tag ?? "latest"}";
    }

    /// <summary>An image ready to stream: local, or pulled into a scratch layout that goes with it.</summary>
    public sealed class LocalImage(Image image, TempDirectory? scratch) : IDisposable
    {
        public Image Image { get; } = image;
        public bool Pulled => scratch != null;

        public void Dispose()
        {
            Image.Dispose();
            scratch?.Dispose();
        }
    }

    /// <summary>
    /// Takes ownership of <paramref name="image"/>: a local image is used as it is; one read from
    /// a registry is copied (blobs verified while they stream) into a private layout and opened there.
    /// </summary>
    public static LocalImage MakeLocal(Image image, ITransferProgress? progress = null, Action<string>? log = null)
    {
        if (image.Source is not RegistrySource) return new LocalImage(image, null);
        var scratch = TempDirectory.Create("pull");
        try
        {
            using (image)
            {
                log?.Invoke($"pulling {image.Name} {image.Descriptor.Digest} into {scratch.Path}");
                using var layout = OciLayoutDestination.OpenOrCreate(scratch.Path, force: false);
                ImageCopier.Copy(image.Source, image.Descriptor, layout, "pulled", 6, progress, log);
            }
            var source = OciLayoutSource.Open(scratch.Path);
            return new LocalImage(Image.Open(source, source.Resolve("pulled", null), ownsSource: true), scratch);
        }
        catch
        {
            scratch.Dispose();
            throw;
        }
    }
}
