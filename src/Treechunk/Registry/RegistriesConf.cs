using System.Text;
using Tomlyn;
using Tomlyn.Model;
using Treechunk.IO;

namespace Treechunk.Registry;

/// <summary>One <c>[[registry]]</c> table of registries.conf, as it applies to a registry.</summary>
/// <param name="Prefix">The <c>location</c> (or <c>prefix</c>) it matches: a host, or a host and namespace.</param>
/// <param name="UploadChunkSize">treechunk's own key (<c>treechunk-upload-chunk-size</c>, bytes); skopeo and podman ignore it.</param>
public sealed record RegistrySettings(string Prefix, bool Insecure, bool Blocked, IReadOnlyList<string> Mirrors, long? UploadChunkSize, string Source);

/// <summary>
/// containers-registries.conf(5), read the way containers/image (so skopeo and podman) reads
/// it: the main file is <c>$CONTAINERS_REGISTRIES_CONF</c>, else <c>~/.config/containers/registries.conf</c>
/// when it exists, else <c>/etc/containers/registries.conf</c>; then the <c>*.conf</c> drop-ins of
/// <c>/etc/containers/registries.conf.d</c> (not when the user file is used) and
/// <c>~/.config/containers/registries.conf.d</c>, in name order, later ones overriding a
/// registry's fields. Both the v2 <c>[[registry]]</c> tables and the v1 <c>[registries.insecure]</c>
/// and <c>[registries.block]</c> lists are understood.
/// </summary>
public sealed class RegistriesConf
{
    private readonly Dictionary<string, RegistrySettings> _byPrefix = new(StringComparer.Ordinal);
    public IReadOnlyList<string> Files { get; private init; } = [];
    public IEnumerable<RegistrySettings> Registries => _byPrefix.Values.OrderBy(r => r.Prefix, StringComparer.Ordinal);

    public const string SystemFile = "/etc/containers/registries.conf";
    public const string SystemDropIns = "/etc/containers/registries.conf.d";

    public static string Home => Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } h ? h : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
    public static string UserFile => Path.Join(Home, ".config/containers/registries.conf");
    public static string UserDropIns => Path.Join(Home, ".config/containers/registries.conf.d");

    public static RegistriesConf Load()
    {
        var files = new List<string>();
        string main;
        var dropInDirs = new List<string>();
        if (Environment.GetEnvironmentVariable("CONTAINERS_REGISTRIES_CONF") is { Length: > 0 } env)
        {
            main = env;
            dropInDirs.Add(SystemDropIns);
        }
        else if (File.Exists(UserFile))
            main = UserFile;
        else
        {
            main = SystemFile;
            dropInDirs.Add(SystemDropIns);
        }
        dropInDirs.Add(UserDropIns);
        if (File.Exists(main)) files.Add(main);
        foreach (var dir in dropInDirs.Where(Directory.Exists))
            files.AddRange(Directory.GetFiles(dir, "*.conf").Order(StringComparer.Ordinal));
        var conf = new RegistriesConf { Files = files };
        foreach (var f in files) conf.Merge(f);
        return conf;
    }

    private void Merge(string file)
    {
        TomlTable table;
        try
        {
            table = TomlSerializer.Deserialize<TomlTable>(File.ReadAllText(file), RegistriesTomlContext.Default)!;
        }
        catch (Exception e) when (e is TomlException or IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            throw new TreechunkException($"{file}: not a readable registries.conf: {e.Message.Split('\n')[0]}");
        }
        if (table.TryGetValue("registry", out var regs) && regs is TomlTableArray array)
            foreach (TomlTable r in array)
            {
                var prefix = (r.TryGetValue("prefix", out var p) ? p as string : null) ?? (r.TryGetValue("location", out var l) ? l as string : null);
                if (string.IsNullOrEmpty(prefix)) continue;
                var old = _byPrefix.GetValueOrDefault(prefix);
                var mirrors = r.TryGetValue("mirror", out var m) && m is TomlTableArray ms
                    ? ms.OfType<TomlTable>().Select(x => x.TryGetValue("location", out var ml) ? ml as string : null).OfType<string>().ToList()
                    : old?.Mirrors.ToList() ?? [];
                _byPrefix[prefix] = new RegistrySettings(prefix,
                    r.TryGetValue("insecure", out var i) && i is bool ib ? ib : old?.Insecure ?? false,
                    r.TryGetValue("blocked", out var b) && b is bool bb ? bb : old?.Blocked ?? false,
                    mirrors,
                    r.TryGetValue("treechunk-upload-chunk-size", out var c) && c is long cl ? cl : old?.UploadChunkSize,
                    file);
            }
        // v1: [registries.insecure] registries = [...], [registries.block] registries = [...]
        if (table.TryGetValue("registries", out var v1) && v1 is TomlTable v1t)
            foreach (var (kind, insecure) in new[] { ("insecure", true), ("block", false) })
                if (v1t.TryGetValue(kind, out var k) && k is TomlTable kt && kt.TryGetValue("registries", out var list) && list is TomlArray hosts)
                    foreach (var host in hosts.OfType<string>())
                    {
                        var old = _byPrefix.GetValueOrDefault(host);
                        _byPrefix[host] = new RegistrySettings(host, insecure || (old?.Insecure ?? false), !insecure || (old?.Blocked ?? false),
                            old?.Mirrors ?? [], old?.UploadChunkSize, file);
                    }
    }

    /// <summary>The settings that apply to a repository: the longest matching prefix (host, or host/namespace), or null.</summary>
    public RegistrySettings? Find(string host, string? repository = null)
    {
        var full = repository != null ? host + "/" + repository : host;
        return _byPrefix.Values
            .Where(r => full == r.Prefix || full.StartsWith(r.Prefix + "/", StringComparison.Ordinal) || (r.Prefix.StartsWith("*.") && host.EndsWith(r.Prefix[1..], StringComparison.Ordinal)))
            .MaxBy(r => r.Prefix.Length);
    }

    /// <summary>
    /// Writes (or replaces) the drop-in <c>~/.config/containers/registries.conf.d/50-treechunk-HOST.conf</c>
    /// for one registry, so skopeo and podman honour the same settings; returns its path.
    /// </summary>
    public static string WriteDropIn(string host, bool insecure, IReadOnlyList<string> mirrors, long? uploadChunkSize)
    {
        Directory.CreateDirectory(UserDropIns);
        var path = Path.Join(UserDropIns, $"50-treechunk-{string.Concat(host.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '_'))}.conf");
        var text = new StringBuilder();
        text.Append("# Written by `treechunk oci registry config`; read by treechunk, skopeo and podman.\n");
        text.Append("[[registry]]\n");
        text.Append($"location = {Quote(host)}\n");
        text.Append($"insecure = {(insecure ? "true" : "false")}\n");
        if (uploadChunkSize is { } size) text.Append($"treechunk-upload-chunk-size = {size}\n");
        foreach (var mirror in mirrors)
        {
            text.Append("\n[[registry.mirror]]\n");
            text.Append($"location = {Quote(mirror)}\n");
            if (insecure) text.Append("insecure = true\n");
        }
        AtomicFile.WriteText(path, text.ToString());
        return path;
    }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
}

/// <summary>Compile-time TOML metadata for the untyped model registries.conf is read into (no reflection: the CLI is native AOT).</summary>
[Tomlyn.Serialization.TomlSerializable(typeof(TomlTable))]
internal sealed partial class RegistriesTomlContext : Tomlyn.Serialization.TomlSerializerContext;
