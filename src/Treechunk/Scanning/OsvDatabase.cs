using System.IO.Compression;
using System.Text.Json;

namespace Treechunk.Scanning;

/// <summary>One affected package of an OSV entry, with what is needed to decide whether a version is affected.</summary>
/// <param name="Ranges">ECOSYSTEM ranges, each its events in file order (introduced, fixed, last_affected, limit).</param>
/// <param name="Versions">Versions listed as affected outright.</param>
/// <param name="Severity">Severity the affected entry itself gives (Debian's urgency, Ubuntu's priority), if any.</param>
public sealed record OsvAffected(string Ecosystem, string Name, IReadOnlyList<IReadOnlyList<OsvEvent>> Ranges, IReadOnlyList<string> Versions, Rating? Severity);

public sealed record OsvEvent(string Kind, string Version);

/// <summary>An OSV entry (ossf/osv-schema), reduced to what matching and reporting use.</summary>
public sealed record OsvEntry(string Id, IReadOnlyList<string> Aliases, string? Summary, string? Details,
    IReadOnlyList<Rating> Ratings, IReadOnlyList<OsvAffected> Affected, IReadOnlyList<string> References, string Source);

/// <summary>A file of the database that could not be used, and why.</summary>
public sealed record SkippedFile(string File, string Reason);

/// <summary>
/// Vulnerability data in OSV JSON: a directory of entry files, the all.zip osv.dev publishes per
/// ecosystem, or a directory holding several of either. Entries are parsed one at a time and
/// kept only when they name a package the image has, so a whole ecosystem's archive costs one
/// pass, not its size in memory. A malformed file is named, skipped and reported; it never
/// stops the scan.
/// </summary>
public sealed class OsvDatabase
{
    public string Location { get; }
    public IReadOnlyList<OsvEntry> Entries { get; }
    public int FilesRead { get; }
    public IReadOnlyList<SkippedFile> Skipped { get; }

    private OsvDatabase(string location, List<OsvEntry> entries, int filesRead, List<SkippedFile> skipped)
    {
        Location = location;
        Entries = entries;
        FilesRead = filesRead;
        Skipped = skipped;
    }

    /// <param name="relevant">(ecosystem, package name) pairs worth keeping; others are dropped as they are read.</param>
    public static OsvDatabase Load(string location, Func<string, string, bool> relevant, Action<string>? warn = null)
    {
        var entries = new List<OsvEntry>();
        var skipped = new List<SkippedFile>();
        int files = 0;
        void One(string name, Func<Stream> open)
        {
            files++;
            try
            {
                using var s = open();
                if (Parse(s, name, relevant) is { } entry) entries.Add(entry);
            }
            catch (Exception e) when (e is JsonException or OsvFormatException or InvalidDataException)
            {
                var reason = e.Message.Split('\n')[0];
                skipped.Add(new SkippedFile(name, reason));
                warn?.Invoke($"skipping malformed OSV file {name}: {reason}");
            }
        }

        if (File.Exists(location))
        {
            if (!location.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) && !location.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
                throw new TreechunkException($"--db {location}: expected a directory of OSV files, an OSV .json file or an osv.dev .zip");
            if (location.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)) ReadZip(location, One, skipped, warn);
            else One(location, () => File.OpenRead(location));
        }
        else if (Directory.Exists(location))
        {
            // Sorted, so a database with two entries of one id keeps the same one everywhere.
            var all = Directory.EnumerateFiles(location, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal);
            foreach (var file in all)
            {
                var rel = Path.GetRelativePath(location, file);
                if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) One(rel, () => File.OpenRead(file));
                else if (file.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)) ReadZip(file, One, skipped, warn, rel);
            }
        }
        else throw new TreechunkException($"--db {location}: no such file or directory");

        // One id once: the same advisory can come from two sources (a directory and a zip).
        var unique = entries.GroupBy(e => e.Id, StringComparer.Ordinal).Select(g => g.First()).OrderBy(e => e.Id, StringComparer.Ordinal).ToList();
        return new OsvDatabase(location, unique, files, skipped);
    }

    private static void ReadZip(string path, Action<string, Func<Stream>> one, List<SkippedFile> skipped, Action<string>? warn, string? shown = null)
    {
        shown ??= path;
        ZipArchive zip;
        try
        {
            zip = ZipFile.OpenRead(path);
        }
        catch (InvalidDataException e)
        {
            skipped.Add(new SkippedFile(shown, "not a zip archive: " + e.Message));
            warn?.Invoke($"skipping {shown}: not a zip archive ({e.Message})");
            return;
        }
        using (zip)
            foreach (var entry in zip.Entries.Where(e => e.FullName.EndsWith(".json", StringComparison.OrdinalIgnoreCase)).OrderBy(e => e.FullName, StringComparer.Ordinal))
                one($"{shown}:{entry.FullName}", entry.Open);
    }

    private sealed class OsvFormatException(string message) : Exception(message);

    /// <summary>One OSV file; null when it is withdrawn or names nothing relevant.</summary>
    internal static OsvEntry? Parse(Stream s, string name, Func<string, string, bool> relevant)
    {
        using var doc = JsonDocument.Parse(s, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 64 });
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new OsvFormatException("the file is not a JSON object");
        var id = String(root, "id") ?? throw new OsvFormatException("no \"id\"");
        if (root.TryGetProperty("withdrawn", out var w) && w.ValueKind == JsonValueKind.String) return null;
        if (!root.TryGetProperty("affected", out var affectedJson)) return null;
        if (affectedJson.ValueKind != JsonValueKind.Array) throw new OsvFormatException($"{id}: \"affected\" is not an array");

        var affected = new List<OsvAffected>();
        foreach (var a in affectedJson.EnumerateArray())
        {
            if (a.ValueKind != JsonValueKind.Object) throw new OsvFormatException($"{id}: an \"affected\" item is not an object");
            if (!a.TryGetProperty("package", out var pkg) || pkg.ValueKind != JsonValueKind.Object) continue;
            var ecosystem = String(pkg, "ecosystem");
            var pkgName = String(pkg, "name");
            if (ecosystem == null || pkgName == null) throw new OsvFormatException($"{id}: a package without ecosystem or name");
            if (!relevant(ecosystem, pkgName)) continue;
            var ranges = new List<IReadOnlyList<OsvEvent>>();
            if (a.TryGetProperty("ranges", out var rs))
            {
                if (rs.ValueKind != JsonValueKind.Array) throw new OsvFormatException($"{id}: \"ranges\" is not an array");
                foreach (var r in rs.EnumerateArray())
                {
                    var type = String(r, "type");
                    // GIT ranges are commits, SEMVER is not how distributions order versions.
                    if (type != "ECOSYSTEM") continue;
                    if (!r.TryGetProperty("events", out var evs) || evs.ValueKind != JsonValueKind.Array)
                        throw new OsvFormatException($"{id}: a range without \"events\"");
                    var events = new List<OsvEvent>();
                    foreach (var ev in evs.EnumerateArray())
                    {
                        if (ev.ValueKind != JsonValueKind.Object) throw new OsvFormatException($"{id}: an event is not an object");
                        foreach (var p in ev.EnumerateObject())
                        {
                            if (p.Name is not ("introduced" or "fixed" or "last_affected" or "limit")) continue;
                            if (p.Value.ValueKind != JsonValueKind.String) throw new OsvFormatException($"{id}: event \"{p.Name}\" is not a string");
                            events.Add(new OsvEvent(p.Name, p.Value.GetString()!));
                        }
                    }
                    ranges.Add(events);
                }
            }
            var versions = new List<string>();
            if (a.TryGetProperty("versions", out var vs) && vs.ValueKind == JsonValueKind.Array)
                versions.AddRange(vs.EnumerateArray().Where(v => v.ValueKind == JsonValueKind.String).Select(v => v.GetString()!));
            Rating? own = null;
            foreach (var section in new[] { "ecosystem_specific", "database_specific" })
                if (a.TryGetProperty(section, out var spec) && spec.ValueKind == JsonValueKind.Object)
                    own ??= Ratings.FromWord(String(spec, "urgency") ?? String(spec, "severity"), section + " of " + ecosystem);
            affected.Add(new OsvAffected(ecosystem, pkgName, ranges, versions, own));
        }
        if (affected.Count == 0) return null;

        var ratings = new List<Rating>();
        if (root.TryGetProperty("severity", out var sev) && sev.ValueKind == JsonValueKind.Array)
            foreach (var s1 in sev.EnumerateArray())
                if (Ratings.FromOsvSeverity(String(s1, "type"), String(s1, "score")) is { } r) ratings.Add(r);
        if (root.TryGetProperty("database_specific", out var db) && db.ValueKind == JsonValueKind.Object &&
            Ratings.FromWord(String(db, "severity"), "database_specific") is { } dbr)
            ratings.Add(dbr);

        var aliases = root.TryGetProperty("aliases", out var al) && al.ValueKind == JsonValueKind.Array
            ? al.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList()
            : [];
        var references = root.TryGetProperty("references", out var refs) && refs.ValueKind == JsonValueKind.Array
            ? refs.EnumerateArray().Select(x => String(x, "url")).OfType<string>().ToList()
            : [];
        return new OsvEntry(id, aliases, String(root, "summary"), String(root, "details"), ratings, affected, references, name);
    }

    private static string? String(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
