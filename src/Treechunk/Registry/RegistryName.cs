using System.Text.RegularExpressions;

namespace Treechunk.Registry;

/// <summary>
/// A repository in a registry, by the docker reference grammar: <c>[HOST[:PORT]/]PATH[:TAG][@DIGEST]</c>.
/// The first component is a host when it has a '.' or a ':' or is <c>localhost</c>; without one
/// the host is docker.io, and a one-component path there is in <c>library/</c>, as docker,
/// podman and skopeo read it.
/// </summary>
public sealed partial record RegistryName(string Host, string Repository)
{
    public const string DockerHub = "docker.io";

    /// <summary>The host to talk to: docker.io's API lives at registry-1.docker.io.</summary>
    public string Endpoint => Host == DockerHub ? "registry-1.docker.io" : Host;

    public override string ToString() => $"{Host}/{Repository}";

    [GeneratedRegex(@"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")]
    private static partial Regex PathComponent();

    [GeneratedRegex(@"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$")]
    private static partial Regex HostPattern();

    /// <summary>Parses a reference (without the <c>docker://</c> prefix) into its name, tag and digest.</summary>
    public static (RegistryName Name, string? Tag, string? Digest) Parse(string text, string context)
    {
        if (text.Length == 0) throw new TreechunkException($"image reference '{context}' names no repository");
        string? digest = null, tag = null;
        int at = text.IndexOf('@');
        if (at >= 0)
        {
            digest = text[(at + 1)..];
            Oci.Digest.Hex(digest);
            text = text[..at];
        }
        int slash = text.IndexOf('/');
        string host, path;
        var first = slash < 0 ? text : text[..slash];
        if (slash >= 0 && (first.Contains('.') || first.Contains(':') || first == "localhost" || first.Any(char.IsUpper)))
        {
            host = first;
            path = text[(slash + 1)..];
        }
        else
        {
            host = DockerHub;
            path = text;
        }
        int colon = path.LastIndexOf(':');
        if (colon >= 0)
        {
            tag = path[(colon + 1)..];
            path = path[..colon];
            if (!ValidTag(tag)) throw new TreechunkException($"invalid tag '{tag}' in '{context}' (allowed: letters, digits, '_', '.', '-'; at most 128)");
        }
        if (!HostPattern().IsMatch(host)) throw new TreechunkException($"invalid registry host '{host}' in '{context}'");
        if (host == "index.docker.io" || host == "registry-1.docker.io") host = DockerHub;
        if (host == DockerHub && !path.Contains('/')) path = "library/" + path;
        if (path.Length == 0 || path.Length > 255 || !path.Split('/').All(c => PathComponent().IsMatch(c)))
            throw new TreechunkException($"invalid repository name '{path}' in '{context}' (lower-case letters, digits and separators . _ - between them, components joined by /)");
        return (new RegistryName(host, path), tag, digest);
    }

    public static bool ValidTag(string tag) =>
        tag.Length is >= 1 and <= 128 && (char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_') &&
        tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    /// <summary>A registry host as given on the command line (--registry): a host, optionally with a port, no scheme.</summary>
    public static string ParseHost(string text)
    {
        var host = text;
        foreach (var scheme in new[] { "https://", "http://", "docker://" })
            if (host.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) host = host[scheme.Length..];
        host = host.TrimEnd('/');
        if (!HostPattern().IsMatch(host)) throw new TreechunkException($"invalid registry '{text}' (expected HOST or HOST:PORT)");
        return host is "index.docker.io" or "registry-1.docker.io" ? DockerHub : host;
    }
}
