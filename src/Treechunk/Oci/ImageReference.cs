namespace Treechunk.Oci;

public enum Transport { OciLayout, OciArchive }

/// <summary>
/// Where an image lives: <c>oci:PATH[:TAG]</c>, <c>oci-archive:FILE[:TAG]</c>, or a bare path
/// (a directory means an OCI layout, a file an oci-archive). Registry references join later.
/// </summary>
public sealed record ImageReference(Transport Transport, string Path, string? Tag)
{
    public static ImageReference Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new TreechunkException("empty image reference");
        if (text.StartsWith("oci:", StringComparison.Ordinal)) return Split(Transport.OciLayout, text[4..], text);
        if (text.StartsWith("oci-archive:", StringComparison.Ordinal)) return Split(Transport.OciArchive, text[12..], text);
        if (text.StartsWith("docker://", StringComparison.Ordinal) || text.StartsWith("docker-archive:", StringComparison.Ordinal))
            throw new TreechunkException($"image reference '{text}': this transport is not supported yet (use oci:PATH[:TAG] or oci-archive:FILE[:TAG])");
        // A bare path: never split a tag off it, since paths may contain ':'.
        var transport = File.Exists(text) ? Transport.OciArchive : Transport.OciLayout;
        return new ImageReference(transport, text, null);
    }

    private static ImageReference Split(Transport transport, string rest, string text)
    {
        if (rest.Length == 0) throw new TreechunkException($"image reference '{text}' has no path");
        int colon = rest.LastIndexOf(':');
        // A tag never contains '/', so "oci:/a:b/c" is a path with a colon in it.
        if (colon > 0 && colon < rest.Length - 1 && !rest.AsSpan(colon + 1).Contains('/'))
        {
            var tag = rest[(colon + 1)..];
            ValidateTag(tag, text);
            return new ImageReference(transport, rest[..colon], tag);
        }
        if (colon == rest.Length - 1) throw new TreechunkException($"image reference '{text}' has an empty tag");
        return new ImageReference(transport, rest, null);
    }

    public static void ValidateTag(string tag, string context)
    {
        // OCI distribution tag grammar: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
        bool ok = tag.Length is >= 1 and <= 128 && (char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_') &&
                  tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');
        if (!ok) throw new TreechunkException($"invalid tag '{tag}' in {context} (allowed: letters, digits, '_', '.', '-'; at most 128)");
    }

    public override string ToString() =>
        (Transport == Transport.OciLayout ? "oci:" : "oci-archive:") + Path + (Tag != null ? ":" + Tag : "");
}
