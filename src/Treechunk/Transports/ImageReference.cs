using Treechunk.Oci;
using Treechunk.Registry;

namespace Treechunk.Transports;

/// <summary>Whether a reference names an image to read or a place to write one.</summary>
public enum ReferenceRole { Source, Destination }

/// <summary>
/// Where an image lives, one closed set of kinds parsed in one place for every command:
/// <c>oci:PATH[:TAG|@DIGEST]</c> (an OCI layout directory), <c>oci-archive:FILE[:TAG|@DIGEST]</c>,
/// <c>docker://HOST[:PORT]/REPO[:TAG|@DIGEST]</c> (a registry), <c>dir:DIR</c> (a chunk directory,
/// skopeo's dir: format; the whole rest is the path, as in skopeo), or a bare path (an existing
/// directory is a layout, or a chunk directory when it has a manifest.json and no oci-layout; an
/// existing file an archive; an absent path is an archive when it ends in <c>.tar</c>, else a layout).
/// </summary>
public abstract record ImageReference
{
    /// <summary>The tag named, or null.</summary>
    public string? Tag { get; init; }
    /// <summary>The manifest digest named (<c>@sha256:...</c>), or null.</summary>
    public string? Digest { get; init; }

    /// <summary>The transport prefix: "oci", "oci-archive".</summary>
    public abstract string Transport { get; }
    /// <summary>The location without tag or digest.</summary>
    public abstract string Location { get; }

    public abstract IImageSource OpenSource();

    /// <param name="force">Replace what is at the location when it is not an image of this kind.</param>
    public abstract IImageDestination OpenDestination(bool force);

    public sealed override string ToString() => $"{Transport}:{Location}{(Tag != null ? ":" + Tag : "")}{(Digest != null ? "@" + Digest : "")}";

    public static ImageReference Parse(string text, ReferenceRole role = ReferenceRole.Source)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new TreechunkException("empty image reference");
        ImageReference r;
        if (text.StartsWith("oci:", StringComparison.Ordinal)) r = Split(text[4..], text, p => new OciLayoutReference(p));
        else if (text.StartsWith("oci-archive:", StringComparison.Ordinal)) r = Split(text[12..], text, p => new OciArchiveReference(p));
        else if (text.StartsWith("dir:", StringComparison.Ordinal))
        {
            if (text.Length == 4) throw new TreechunkException($"image reference '{text}' has no path");
            r = new ChunkDirectoryReference(text[4..]);
        }
        else if (text.StartsWith("docker://", StringComparison.Ordinal))
        {
            var (name, tag, digest) = RegistryName.Parse(text[9..], text);
            r = new DockerReference(name) { Tag = tag, Digest = digest };
        }
        else if (text.StartsWith("docker-archive:", StringComparison.Ordinal) ||
                 text.StartsWith("docker-daemon:", StringComparison.Ordinal) || text.StartsWith("containers-storage:", StringComparison.Ordinal))
            throw new TreechunkException($"image reference '{text}': this transport is not supported yet (use docker://HOST/REPO[:TAG], oci:PATH[:TAG], oci-archive:FILE[:TAG] or dir:DIR)");
        else if (text.Contains("://", StringComparison.Ordinal))
            throw new TreechunkException($"image reference '{text}': unknown transport (use docker://HOST/REPO[:TAG], oci:PATH[:TAG], oci-archive:FILE[:TAG] or dir:DIR)");
        else
        {
            // A bare path: never split a tag off it, since paths may contain ':'.
            bool archive = Directory.Exists(text) ? false : File.Exists(text) || text.EndsWith(".tar", StringComparison.Ordinal);
            r = archive ? new OciArchiveReference(text)
                : ChunkDirectory.LooksLikeChunkDirectory(text) ? new ChunkDirectoryReference(text)
                : new OciLayoutReference(text);
        }
        if (role == ReferenceRole.Destination && r.Digest != null)
            throw new TreechunkException($"destination '{text}' names a digest: a digest is what an image has once written, not where it goes (give a tag or none)");
        return r;
    }

    private static ImageReference Split(string rest, string text, Func<string, ImageReference> make)
    {
        if (rest.Length == 0) throw new TreechunkException($"image reference '{text}' has no path");
        int at = rest.LastIndexOf("@sha256:", StringComparison.Ordinal);
        if (at >= 0)
        {
            var digest = rest[(at + 1)..];
            Oci.Digest.Hex(digest);
            if (at == 0) throw new TreechunkException($"image reference '{text}' has no path");
            return make(rest[..at]) with { Digest = digest };
        }
        int colon = rest.LastIndexOf(':');
        // A tag never contains '/', so "oci:/a:b/c" is a path with a colon in it.
        if (colon > 0 && colon < rest.Length - 1 && !rest.AsSpan(colon + 1).Contains('/'))
        {
            var tag = rest[(colon + 1)..];
            ValidateTag(tag, text);
            return make(rest[..colon]) with { Tag = tag };
        }
        if (colon == rest.Length - 1) throw new TreechunkException($"image reference '{text}' has an empty tag");
        return make(rest);
    }

    public static void ValidateTag(string tag, string context)
    {
        // OCI distribution tag grammar: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
        bool ok = tag.Length is >= 1 and <= 128 && (char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_') &&
                  tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');
        if (!ok) throw new TreechunkException($"invalid tag '{tag}' in {context} (allowed: letters, digits, '_', '.', '-'; at most 128)");
    }

    /// <summary>Opens the image this reference names, for the given platform when it names an index.</summary>
    public Image OpenImage(Platform? platform = null)
    {
        var source = OpenSource();
        try
        {
            return Image.Open(source, source.Resolve(Tag, Digest), platform, ownsSource: true);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }
}

/// <summary><c>oci:DIR</c>: an OCI image layout directory.</summary>
public sealed record OciLayoutReference(string Path) : ImageReference
{
    public override string Transport => "oci";
    public override string Location => Path;
    public override IImageSource OpenSource() => OciLayoutSource.Open(Path);
    public override IImageDestination OpenDestination(bool force) => OciLayoutDestination.OpenOrCreate(Path, force);
}

/// <summary><c>oci-archive:FILE</c>: an OCI layout packed in one tar.</summary>
public sealed record OciArchiveReference(string Path) : ImageReference
{
    public override string Transport => "oci-archive";
    public override string Location => Path;
    public override IImageSource OpenSource() => OciArchiveSource.Open(Path);
    public override IImageDestination OpenDestination(bool force) => OciArchiveDestination.OpenOrCreate(Path, force);
}

/// <summary><c>dir:DIR</c>: a chunk directory (skopeo's dir: format), one image and no tags.</summary>
public sealed record ChunkDirectoryReference(string Path) : ImageReference
{
    public override string Transport => "dir";
    public override string Location => Path;
    public override IImageSource OpenSource() => ChunkDirectorySource.Open(Path);
    public override IImageDestination OpenDestination(bool force) => ChunkDirectoryDestination.OpenOrCreate(Path, force);
}

/// <summary><c>docker://HOST/REPO</c>: a repository of a registry (docker.io when no host is named).</summary>
public sealed record DockerReference(RegistryName Name) : ImageReference
{
    /// <summary>The registry session to use; null: the process's (<see cref="RegistryContext.Default"/>).</summary>
    public RegistryContext? Context { get; init; }

    public override string Transport => "docker";
    public override string Location => "//" + Name;
    public override IImageSource OpenSource() => new RegistrySource(Context ?? RegistryContext.Default, Name);
    public override IImageDestination OpenDestination(bool force) => new RegistryDestination(Context ?? RegistryContext.Default, Name);
}
