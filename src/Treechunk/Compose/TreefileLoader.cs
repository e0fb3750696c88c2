using System.Globalization;
using System.Text.RegularExpressions;
using Treechunk.Chunking;
using Treechunk.Oci;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Treechunk.Compose;

public sealed partial record Treefile
{
    /// <summary>
    /// Reads a treefile (YAML or JSON) and everything it includes. Every problem is a
    /// <see cref="TreechunkException"/> with one line that names the file at fault and, where
    /// there is one, the line in it.
    /// </summary>
    public static Treefile Load(string path) => TreefileReader.Load(path);
}

/// <summary>
/// The representation model (not the deserializer) is used on purpose: it keeps node positions
/// for error messages and lets unknown keys be refused rather than silently ignored, which is
/// what turns a typo like "pakages" into an error instead of an image without those packages.
/// </summary>
internal static partial class TreefileReader
{
    /// <summary>Deep enough for any sane layering; a bound so that symlinked include loops terminate too.</summary>
    private const int MaxIncludeDepth = 32;

    private static readonly string[] TopLevelKeys =
    [
        "ref", "repos", "packages", "exclude-packages", "include", "releasever", "variant",
        "automatic-version-prefix", "add-files", "remove-files", "postprocess", "units",
        "container-cmd", "oci",
    ];

    private static readonly string[] OciKeys =
    [
        "tag", "labels", "annotations", "chunk-size", "chunk-algorithm", "max-layers",
        "compression", "compression-level",
    ];

    /// <summary>rpm-ostree keys people will carry over; saying "not supported" beats "unknown".</summary>
    private static readonly HashSet<string> RpmOstreeOnlyKeys =
    [
        "boot-location", "tmp-is-dir", "selinux", "documentation", "initramfs-args", "machineid-compat",
        "etc-group-members", "preserve-passwd", "check-passwd", "check-groups", "ignore-removed-users",
        "ignore-removed-groups", "postprocess-script", "install-langs", "readonly-executables", "rpmdb",
        "cliwrap", "recommends", "basearch", "lockfile-repos", "repo-packages", "modules", "gpg-key",
        "mutate-os-release", "add-commit-metadata", "rojig", "conditional-include", "arch-include",
        "default-target", "remove-from-packages", "sysusers", "opt-usrlocal", "exclude-packages-from-repos",
    ];

    public static Treefile Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new TreechunkException(Directory.Exists(full)
                ? $"treefile {path}: is a directory, not a treefile"
                : $"treefile {path}: no such file");
        var ctx = new Context(Path.GetDirectoryName(full)!);
        var layer = ReadFile(full, [], ctx);

        var kinds = layer.Repos.Select(r => r.Kind).Distinct().ToList();
        if (kinds.Count > 1)
        {
            var apt = layer.Repos.First(r => r.Kind == RepoKind.Apt);
            var dnf = layer.Repos.First(r => r.Kind == RepoKind.Dnf);
            throw new TreechunkException(
                $"treefile {Display(full)}: repos mix apt and dnf: '{apt.Name}' is {ctx.Rel(apt.Path)} (apt) but '{dnf.Name}' is {ctx.Rel(dnf.Path)} (dnf); one treefile composes from one distribution");
        }

        return new Treefile
        {
            Path = full,
            Ref = layer.Ref,
            Repos = layer.Repos,
            Packages = layer.Packages.Distinct(StringComparer.Ordinal).ToList(),
            ExcludePackages = layer.ExcludePackages.Distinct(StringComparer.Ordinal).ToList(),
            Releasever = layer.Releasever,
            Variant = layer.Variant,
            AutomaticVersionPrefix = layer.AutomaticVersionPrefix,
            AddFiles = layer.AddFiles,
            RemoveFiles = layer.RemoveFiles.Distinct(StringComparer.Ordinal).ToList(),
            Postprocess = layer.Postprocess,
            Units = layer.Units.Distinct(StringComparer.Ordinal).ToList(),
            ContainerCmd = layer.ContainerCmd,
            Oci = new OciSection
            {
                Tag = layer.Tag,
                Labels = layer.Labels,
                Annotations = layer.Annotations,
                ChunkSize = layer.ChunkSize,
                ChunkAlgorithm = layer.ChunkAlgorithm,
                MaxLayers = layer.MaxLayers,
                Compression = layer.Compression,
                CompressionLevel = layer.CompressionLevel,
            },
        };
    }

    private sealed class Context(string rootDir)
    {
        /// <summary>Include chains are shown relative to the top treefile's folder: short and still unambiguous.</summary>
        public string Rel(string full) => Path.GetRelativePath(rootDir, full);
    }

    /// <summary>What one file says, and after merging, what it and its includes say together.</summary>
    private sealed class Layer
    {
        public string? Ref, Releasever, Variant, AutomaticVersionPrefix;
        public List<RepoDefinition> Repos = [];
        public List<string> Packages = [], ExcludePackages = [], RemoveFiles = [], Postprocess = [], Units = [];
        public List<(string Source, string Destination)> AddFiles = [];
        public List<string>? ContainerCmd;
        public string? Tag, ChunkSize, ChunkAlgorithm, Compression;
        public int? MaxLayers, CompressionLevel;
        public Dictionary<string, string> Labels = new(StringComparer.Ordinal), Annotations = new(StringComparer.Ordinal);

        /// <summary>Lays <paramref name="over"/> on top: its lists go after ours, its scalars and map entries win.</summary>
        public void MergeFrom(Layer over, string overFile)
        {
            Ref = over.Ref ?? Ref;
            Releasever = over.Releasever ?? Releasever;
            Variant = over.Variant ?? Variant;
            AutomaticVersionPrefix = over.AutomaticVersionPrefix ?? AutomaticVersionPrefix;
            foreach (var repo in over.Repos)
            {
                var same = Repos.FirstOrDefault(r => r.Name == repo.Name);
                if (same == null) Repos.Add(repo);
                // Two different files under one name would leave it to chance which one the backend uses.
                else if (same.Path != repo.Path)
                    throw new TreechunkException(
                        $"treefile {Display(overFile)}: repo '{repo.Name}' is defined twice, by {Display(same.Path)} and by {Display(repo.Path)}; rename one");
            }
            Packages.AddRange(over.Packages);
            ExcludePackages.AddRange(over.ExcludePackages);
            RemoveFiles.AddRange(over.RemoveFiles);
            Postprocess.AddRange(over.Postprocess);
            Units.AddRange(over.Units);
            foreach (var add in over.AddFiles)
            {
                // One destination gets one file: the including file's choice replaces the included one's.
                AddFiles.RemoveAll(a => a.Destination == add.Destination);
                AddFiles.Add(add);
            }
            ContainerCmd = over.ContainerCmd ?? ContainerCmd;
            Tag = over.Tag ?? Tag;
            ChunkSize = over.ChunkSize ?? ChunkSize;
            ChunkAlgorithm = over.ChunkAlgorithm ?? ChunkAlgorithm;
            Compression = over.Compression ?? Compression;
            MaxLayers = over.MaxLayers ?? MaxLayers;
            CompressionLevel = over.CompressionLevel ?? CompressionLevel;
            foreach (var (k, v) in over.Labels) Labels[k] = v;
            foreach (var (k, v) in over.Annotations) Annotations[k] = v;
        }
    }

    /// <summary>Parses one file and merges its includes under it.</summary>
    /// <param name="chain">The files that included this one, outermost first.</param>
    private static Layer ReadFile(string file, List<string> chain, Context ctx)
    {
        var root = ReadRoot(file);
        var own = new Layer();
        var includes = new List<(string Path, YamlNode Node)>();
        var dir = Path.GetDirectoryName(file)!;
        var f = new FileErrors(file);

        foreach (var (keyNode, value) in root.Children)
        {
            var key = KeyName(keyNode, f);
            switch (key)
            {
                case "ref": own.Ref = f.String(value, key); break;
                case "releasever": own.Releasever = f.String(value, key); break;
                case "variant": own.Variant = f.String(value, key); break;
                case "automatic-version-prefix": own.AutomaticVersionPrefix = f.String(value, key); break;
                case "packages":
                case "exclude-packages":
                    // rpm-ostree allows "- foo bar" for two packages; so do we.
                    var names = f.StringList(value, key).SelectMany(s => s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
                    (key == "packages" ? own.Packages : own.ExcludePackages).AddRange(names);
                    break;
                case "repos":
                    foreach (var (name, node) in f.StringListWithNodes(value, key))
                        own.Repos.Add(ResolveRepo(name, node, dir, f));
                    break;
                case "include":
                    var paths = value is YamlScalarNode
                        ? [(f.String(value, key), value)]
                        : f.StringListWithNodes(value, key, "a path or a list of paths");
                    includes.AddRange(paths.Select(p => (p.Item1, p.Item2)));
                    break;
                case "add-files": own.AddFiles.AddRange(ReadAddFiles(value, dir, f)); break;
                case "remove-files":
                    foreach (var (p, node) in f.StringListWithNodes(value, key))
                    {
                        // The backend deletes these inside the rootfs; ".." would let a treefile reach outside it.
                        if (p.Split('/').Contains(".."))
                            throw f.Error($"'remove-files' entry '{p}' must not contain '..'", node);
                        own.RemoveFiles.Add(p);
                    }
                    break;
                case "postprocess": own.Postprocess.AddRange(f.StringList(value, key)); break;
                case "units": own.Units.AddRange(f.StringList(value, key)); break;
                case "container-cmd": own.ContainerCmd = ReadCommand(value, f); break;
                case "oci": ReadOci(value, own, f); break;
                default: throw UnknownKey(keyNode, key, TopLevelKeys, null, f);
            }
        }

        var chainHere = chain.Append(file).ToList();
        var merged = new Layer();
        foreach (var (incPath, node) in includes)
        {
            var target = Path.GetFullPath(Path.Combine(dir, incPath));
            if (chainHere.Contains(target))
            {
                var cycle = chainHere.SkipWhile(c => c != target).Append(target).Select(ctx.Rel);
                throw f.Error($"include cycle: {string.Join(" -> ", cycle)}", node);
            }
            if (chainHere.Count >= MaxIncludeDepth)
                throw f.Error($"includes nest deeper than {MaxIncludeDepth} files", node);
            if (!File.Exists(target))
                throw f.Error($"include '{incPath}': no such file {Display(target)}", node);
            merged.MergeFrom(ReadFile(target, chainHere, ctx), file);
        }
        merged.MergeFrom(own, file);
        return merged;
    }

    private static YamlMappingNode ReadRoot(string file)
    {
        string text;
        try { text = File.ReadAllText(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"treefile {Display(file)}: cannot read: {e.Message}", ExitCodes.EnvironmentError, e);
        }

        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            throw new TreechunkException(
                $"treefile {Display(file)}: YAML syntax error at line {e.Start.Line}, column {e.Start.Column}: {YamlMessage(e)}", ExitCodes.BadInput, e);
        }
        catch (InvalidOperationException e)
        {
            // YamlDotNet's scanner throws this, with no position, for some malformed input
            // (e.g. an unclosed flow sequence); the position is where parsing last succeeded.
            var (line, column) = LastGoodPosition(text);
            throw new TreechunkException(
                $"treefile {Display(file)}: YAML syntax error at line {line}, column {column}: unexpected content after this point (unclosed bracket or quote?)", ExitCodes.BadInput, e);
        }

        var docs = stream.Documents;
        if (docs.Count == 0 || docs.Count == 1 && IsNull(docs[0].RootNode))
            throw new TreechunkException($"treefile {Display(file)}: empty file");
        if (docs.Count > 1)
            throw new TreechunkException($"treefile {Display(file)}: holds {docs.Count} YAML documents (line {docs[1].RootNode.Start.Line}); a treefile is one");
        if (docs[0].RootNode is not YamlMappingNode map)
            throw new FileErrors(file).Error("the top level must be a mapping of keys such as 'ref' and 'packages'", docs[0].RootNode);
        return map;
    }

    private static (long Line, long Column) LastGoodPosition(string text)
    {
        var parser = new YamlDotNet.Core.Parser(new StringReader(text));
        (long, long) last = (1, 1);
        try
        {
            while (parser.MoveNext())
                if (parser.Current is { } ev) last = (ev.End.Line, ev.End.Column);
        }
        catch (Exception e) when (e is YamlException or InvalidOperationException) { }
        return last;
    }

    /// <summary>YamlDotNet prefixes its messages with both marks; the position is already in ours.</summary>
    private static string YamlMessage(YamlException e)
    {
        var m = MarkPrefix().Replace(e.Message, "");
        return string.Join(' ', m.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [GeneratedRegex(@"^\(Line: \d+, Col: \d+, Idx: \d+\) - \(Line: \d+, Col: \d+, Idx: \d+\): ")]
    private static partial Regex MarkPrefix();

    private static string KeyName(YamlNode keyNode, FileErrors f) =>
        keyNode is YamlScalarNode { Value: { Length: > 0 } k } && !IsNull(keyNode)
            ? k
            : throw f.Error("keys must be plain names such as 'packages'", keyNode);

    private static TreechunkException UnknownKey(YamlNode node, string key, string[] known, string? section, FileErrors f)
    {
        var where = section == null ? $"unknown key '{key}'" : $"unknown key '{key}' in '{section}'";
        if (section == null && RpmOstreeOnlyKeys.Contains(key))
            return f.Error($"{where}: an rpm-ostree key that treechunk does not support", node);
        var best = known.Select(k => (k, d: EditDistance(key.ToLowerInvariant(), k))).Where(x => x.d <= 2).OrderBy(x => x.d).Select(x => x.k).FirstOrDefault();
        var hint = best != null ? $"; did you mean '{best}'?" : $"; known keys: {string.Join(", ", known)}";
        return new TreechunkException($"treefile {Display(f.File)}: {where} (line {node.Start.Line}){hint}");
    }

    /// <summary>Optimal string alignment distance, so a swapped pair ("pakcages") counts as one slip.</summary>
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }

    private static RepoDefinition ResolveRepo(string name, YamlNode node, string dir, FileErrors f)
    {
        // The name becomes part of a file name; a path here would look outside the treefile's folder.
        if (name.Contains('/') || name is "." or "..")
            throw f.Error($"repo name '{name}' must be a plain name (NAME.sources or NAME.repo is looked up next to the treefile)", node);
        var sources = Path.Join(dir, name + ".sources");
        var repo = Path.Join(dir, name + ".repo");
        bool apt = File.Exists(sources), dnf = File.Exists(repo);
        if (apt && dnf)
            throw f.Error($"repo '{name}': both {name}.sources and {name}.repo exist next to the treefile; keep one", node);
        if (!apt && !dnf)
            throw f.Error($"repo '{name}': no definition, looked for {name}.sources (apt) and {name}.repo (dnf) in {Display(dir)}", node);
        return apt ? new RepoDefinition(name, sources, RepoKind.Apt) : new RepoDefinition(name, repo, RepoKind.Dnf);
    }

    private static IEnumerable<(string, string)> ReadAddFiles(YamlNode value, string dir, FileErrors f)
    {
        const string shape = "'add-files' must be a list of [source, destination] pairs";
        if (value is not YamlSequenceNode seq) throw f.Error(shape, value);
        var result = new List<(string, string)>();
        foreach (var item in seq.Children)
        {
            if (item is not YamlSequenceNode { Children.Count: 2 } pair || !IsString(pair.Children[0]) || !IsString(pair.Children[1]))
                throw f.Error(shape, item);
            var src = ((YamlScalarNode)pair.Children[0]).Value!;
            var dest = ((YamlScalarNode)pair.Children[1]).Value!;
            var full = Path.GetFullPath(Path.Combine(dir, src));
            if (Directory.Exists(full))
                throw f.Error($"add-files source '{src}' is a directory; list each file", item);
            if (!File.Exists(full))
                throw f.Error($"add-files source '{src}': no such file {Display(full)}", item);
            if (!dest.StartsWith('/'))
                throw f.Error($"add-files destination '{dest}' must be an absolute path", item);
            if (dest.Split('/').Contains(".."))
                throw f.Error($"add-files destination '{dest}' must not contain '..'", item);
            result.Add((full, dest));
        }
        return result;
    }

    private static List<string> ReadCommand(YamlNode value, FileErrors f)
    {
        if (value is YamlScalarNode && IsString(value))
        {
            var text = ((YamlScalarNode)value).Value!;
            // Word splitting only: quoting rules would be a shell of our own, and the image may have no shell.
            if (text.IndexOfAny(['"', '\'', '\\']) >= 0)
                throw f.Error("'container-cmd' given as a string cannot hold quotes; write it as a list of arguments", value);
            var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).ToList();
            if (words.Count == 0) throw f.Error("'container-cmd' must not be empty", value);
            return words;
        }
        var list = f.StringList(value, "container-cmd", "a list of strings or a string");
        if (list.Count == 0) throw f.Error("'container-cmd' must not be empty", value);
        return list;
    }

    private static void ReadOci(YamlNode value, Layer own, FileErrors f)
    {
        if (value is not YamlMappingNode map) throw f.Error("'oci' must be a mapping (tag, labels, chunk-size, ...)", value);
        foreach (var (keyNode, v) in map.Children)
        {
            var key = KeyName(keyNode, f);
            var what = "oci." + key;
            switch (key)
            {
                case "tag": own.Tag = f.String(v, what); break;
                case "labels": foreach (var (k, s) in f.StringMap(v, what)) own.Labels[k] = s; break;
                case "annotations": foreach (var (k, s) in f.StringMap(v, what)) own.Annotations[k] = s; break;
                // Values are checked with the same parsers the command line uses, so a bad one fails now, not after the compose.
                case "chunk-size": own.ChunkSize = f.Checked(v, what, s => Sizes.Parse(s, what)); break;
                case "chunk-algorithm": own.ChunkAlgorithm = f.Checked(v, what, s => ChunkAlgorithms.Parse(s)); break;
                case "compression": own.Compression = f.Checked(v, what, s => LayerCompression.Parse(s)); break;
                case "max-layers":
                    own.MaxLayers = f.Int(v, what);
                    if (own.MaxLayers < 1) throw f.Error($"'{what}' must be at least 1", v);
                    break;
                case "compression-level": own.CompressionLevel = f.Int(v, what); break;
                default: throw UnknownKey(keyNode, key, OciKeys, "oci", f);
            }
        }
    }

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static bool IsString(YamlNode node) => node is YamlScalarNode && !IsNull(node);

    /// <summary>Relative to the working directory when below it (what the user typed), else absolute.</summary>
    private static string Display(string full)
    {
        var rel = Path.GetRelativePath(Environment.CurrentDirectory, full);
        return rel.StartsWith("..") || Path.IsPathRooted(rel) ? full : rel;
    }

    /// <summary>Type checks that report the file and the line of the offending value.</summary>
    private sealed class FileErrors(string file)
    {
        public string File => file;

        public TreechunkException Error(string message, YamlNode node) =>
            new($"treefile {Display(file)}: {message} (line {node.Start.Line})");

        public string String(YamlNode node, string key) =>
            IsString(node) ? ((YamlScalarNode)node).Value! : throw Error($"'{key}' must be a string", node);

        public List<string> StringList(YamlNode node, string key, string shape = "a list of strings") =>
            StringListWithNodes(node, key, shape).Select(x => x.Item1).ToList();

        public List<(string, YamlNode)> StringListWithNodes(YamlNode node, string key, string shape = "a list of strings")
        {
            if (node is not YamlSequenceNode seq) throw Error($"'{key}' must be {shape}", node);
            foreach (var item in seq.Children)
                if (!IsString(item)) throw Error($"'{key}' must be {shape}", item);
            return seq.Children.Select(i => (((YamlScalarNode)i).Value!, i)).ToList();
        }

        public List<(string, string)> StringMap(YamlNode node, string key)
        {
            const string shape = "a mapping of names to strings";
            if (node is not YamlMappingNode map) throw Error($"'{key}' must be {shape}", node);
            var result = new List<(string, string)>();
            foreach (var (k, v) in map.Children)
            {
                if (!IsString(k) || !IsString(v)) throw Error($"'{key}' must be {shape}", IsString(k) ? v : k);
                result.Add((((YamlScalarNode)k).Value!, ((YamlScalarNode)v).Value!));
            }
            return result;
        }

        public int Int(YamlNode node, string key) =>
            IsString(node) && int.TryParse(((YamlScalarNode)node).Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
                ? n
                : throw Error($"'{key}' must be an integer", node);

        public string Checked<T>(YamlNode node, string key, Func<string, T> parse)
        {
            var s = String(node, key);
            try { parse(s); }
            catch (TreechunkException e) { throw Error(e.Message, node); }
            return s;
        }
    }
}
