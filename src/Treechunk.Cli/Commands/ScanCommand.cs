using System.CommandLine;
using System.Globalization;
using System.Text;
using Spectre.Console;
using Treechunk.IO;
using Treechunk.Oci;
using Treechunk.Registry;
using Treechunk.Runtimes;
using Treechunk.Scanning;
using Treechunk.Transports;

namespace Treechunk.Cli.Commands;

/// <summary>`oci scan`: the CLI face of <see cref="Treechunk.Scanning"/> (options, opening, printing).</summary>
public static class ScanCommand
{
    private static readonly string[] Scanners = ["builtin", "clair", "trivy", "grype"];
    private static readonly string[] Formats = ["table", "json", "sarif", "spdx", "cyclonedx"];

    public static Command Create(string imageHelp)
    {
        var cmd = new Command("scan", """
            List what an image has installed and which known vulnerabilities affect it.

            builtin (default): the image's package databases (dpkg status, rpm's sqlite
            database) and os-release are read from the layers that hold them, streamed, without
            unpacking the image; the packages are matched against OSV vulnerability data from
            --db (a directory of OSV .json files, an osv.dev all.zip, or a directory of both)
            with the distribution's exact version order (dpkg's for Debian and Ubuntu, rpm's for
            rpm distributions). Debian's and Ubuntu's advisories name source packages: every
            binary built from an affected source is reported. Without --db the packages are
            listed (and the SBOMs written) with no vulnerability matching. A malformed OSV file
            is named, skipped and counted in the report.

            clair: a client of Clair v4 at --clair-url (default $CLAIR_URL, else
            http://localhost:6060): the manifest goes to Clair's indexer with each layer's
            registry URL and our registry credentials, and Clair's vulnerability report is
            rendered in the same formats. Clair fetches the layers itself, so the image must be
            in a registry it can reach.

            trivy, grype: the image is handed to the installed tool as a docker-archive and its
            report (in its own shape, in the asked format) passes through.

            Output formats: table, json (the report: image, distro, packages with purls,
            database, vulnerabilities with id, package, version, source, fixed_version,
            severity, cvss_score, summary, url; summary counts; notices), sarif (2.1.0),
            spdx (SPDX 2.3 JSON SBOM), cyclonedx (CycloneDX 1.5 JSON SBOM with the
            vulnerabilities). Documents carry the image's own creation time and identifiers
            derived from its digest: the same image gives the same bytes.

            Exit codes: 0 done; 1 a finding at or above --fail-on; 2 bad input (options, image,
            --db); 3 the environment (scanner not installed, Clair unreachable).

            Examples:
              treechunk oci scan --output-format=json --output-file=vulnerabilities.json /path/to/oci-image
              treechunk oci scan oci:./image:v1 --db ./osv-debian --fail-on high
              treechunk oci scan --scanner=clair --registry quay.io --repository example/myapp --tag latest
              treechunk oci scan docker://localhost:5000/os:1 --output-format spdx --output-file sbom.spdx.json
            """);
        var image = new Argument<string?>("IMAGE") { Description = imageHelp + " (or --registry/--repository/--tag)", Arity = ArgumentArity.ZeroOrOne };
        var seed = new TransferCommands.SeedReference();
        var scanner = new Option<string>("--scanner") { Description = "builtin (default), clair, trivy or grype", DefaultValueFactory = _ => "builtin" };
        var db = new Option<string?>("--db") { Description = "OSV vulnerability data: a directory of OSV .json files and/or osv.dev .zip archives, or one such file (builtin); trivy's cache dir; grype's db dir" };
        var format = new Option<string>("--output-format") { Description = "table (default), json, sarif, spdx or cyclonedx", DefaultValueFactory = _ => "table" };
        var outputFile = new Option<string?>("--output-file") { Description = "Write the report here (replaced atomically) instead of stdout; stdout gets a one-line summary" };
        var failOn = new Option<string?>("--fail-on") { Description = "Exit 1 when a finding is at least this severe: negligible, low, medium, high, critical" };
        var clairUrl = new Option<string?>("--clair-url") { Description = "Clair v4's HTTP API (default $CLAIR_URL, else http://localhost:6060)" };
        var json = GlobalOptions.Json();
        json.Description = "Same as --output-format json";
        cmd.Arguments.Add(image);
        seed.AddTo(cmd, digest: true);
        foreach (var o in new Option[] { scanner, db, format, outputFile, failOn, clairUrl, GlobalOptions.Platform(), json }) cmd.Options.Add(o);

        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            // Every option is checked before an image is opened or a scanner asked.
            var which = p.GetValue(scanner)!;
            if (Array.IndexOf(Scanners, which) < 0) throw new TreechunkException($"unknown --scanner '{which}' (expected {string.Join(", ", Scanners)})");
            var fmt = p.GetValue(json) ? "json" : p.GetValue(format)!;
            if (Array.IndexOf(Formats, fmt) < 0) throw new TreechunkException($"unknown --output-format '{fmt}' (expected {string.Join(", ", Formats)})");
            Severity? threshold = p.GetValue(failOn) is { } f ? Ratings.ParseThreshold(f) : null;
            var dbPath = p.GetValue(db);
            // trivy's and grype's database directories are theirs to create; ours must exist.
            if (which == "builtin" && dbPath != null && !File.Exists(dbPath) && !Directory.Exists(dbPath)) throw new TreechunkException($"--db {dbPath}: no such file or directory");
            var output = p.GetValue(outputFile);
            if (output != null)
            {
                var parent = Path.GetDirectoryName(Path.GetFullPath(output))!;
                if (!Directory.Exists(parent)) throw new TreechunkException($"--output-file: directory {parent} does not exist");
                if (Directory.Exists(output)) throw new TreechunkException($"--output-file {output} is a directory");
            }
            var text = seed.ImageOrFlags(p, image).Text;
            Uri? clair = null;
            if (which == "clair")
            {
                var url = p.GetValue(clairUrl) ?? Environment.GetEnvironmentVariable("CLAIR_URL") ?? "http://localhost:6060";
                if (!Uri.TryCreate(url, UriKind.Absolute, out clair) || clair.Scheme is not ("http" or "https"))
                    throw new TreechunkException($"--clair-url '{url}' is not an http(s) URL");
            }
            string? tool = which is "trivy" or "grype" ? ExternalScanners.Locate(which) : null;

            using var img = Run.OpenImage(p, text);
            if (tool != null) return RunExternal(which, tool, img, fmt, output, threshold, dbPath);

            if (which == "clair" && dbPath != null) throw new TreechunkException("--db is for the builtin scanner, trivy and grype: Clair keeps its own vulnerability data");
            var report = which == "clair" ? ScanWithClair(img, text, clair!) : ScanBuiltin(img, text, dbPath);
            foreach (var notice in report.Notices) Console.Error.WriteLine("notice: " + notice);
            Write(report, fmt, output);
            if (threshold is { } t && report.Findings.Count(x => x.Severity >= t) is var over and > 0)
            {
                Console.Error.WriteLine($"treechunk: {over} finding{(over == 1 ? "" : "s")} at or above {Ratings.Name(t)} (--fail-on)");
                return ExitCodes.VerificationFailed;
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static string ToolVersion =>
        typeof(ScanCommand).Assembly.GetName().Version is { } v ? $"{v.Major}.{v.Minor}.{v.Build}" : "0";

    private static DateTimeOffset CreatedOf(Image img) =>
        img.Config.Created is { } c && DateTimeOffset.TryParse(c, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t) ? t : DateTimeOffset.UnixEpoch;

    private static ScanReport ScanBuiltin(Image img, string text, string? dbPath)
    {
        var inventory = Status("reading package databases", () => ImageInventoryReader.Read(img, Run.Log));
        var notices = inventory.Notices.ToList();
        DatabaseSummary? summary = null;
        List<Finding> findings = [];
        if (dbPath != null)
        {
            var database = Status("loading vulnerability data", () => OsvDatabase.Load(dbPath, OsvMatcher.RelevanceFor(inventory), Run.Warn));
            findings = OsvMatcher.Match(inventory, database.Entries);
            summary = new DatabaseSummary(dbPath, database.FilesRead, database.Entries.Count, database.Skipped);
            if (database.Skipped.Count > 0) notices.Add($"{database.Skipped.Count} of {database.FilesRead} OSV files were malformed and skipped (listed in the json report)");
            Run.Log($"{dbPath}: {database.FilesRead} OSV files, {database.Entries.Count} about this image's packages");
        }
        else if (inventory.Packages.Count > 0)
            notices.Add("no vulnerability data given (--db): packages are listed, nothing is matched");
        return new ScanReport(text, img.Descriptor.Digest, "builtin", CreatedOf(img), ToolVersion, inventory, findings, summary, notices);
    }

    private static ScanReport ScanWithClair(Image img, string text, Uri clairUrl)
    {
        if (img.Source is not RegistrySource registry)
            throw new TreechunkException($"{text} is not in a registry: Clair fetches layers itself from registry URLs, so push the image first (treechunk oci copy {text} docker://HOST/REPO:TAG) and scan that");
        var layers = img.Layers.Select(l =>
        {
            var (uri, auth) = registry.Client.BlobAccess(l.Descriptor.Digest);
            var headers = new Dictionary<string, string[]>(StringComparer.Ordinal);
            if (auth != null) headers["Authorization"] = [auth.ToString()];
            return new ClairLayer(l.Descriptor.Digest, uri, headers);
        }).ToList();
        using var client = new ClairClient(clairUrl, log: Run.Log);
        var vulnerabilityReport = Status("waiting for Clair", () => client.Scan(img.Descriptor.Digest, layers));
        var (inventory, findings) = ClairClient.Interpret(vulnerabilityReport);
        return new ScanReport(text, img.Descriptor.Digest, "clair", CreatedOf(img), ToolVersion, inventory, findings, null, []);
    }

    private static int RunExternal(string which, string tool, Image img, string fmt, string? output, Severity? threshold, string? db)
    {
        using var scratch = TempDirectory.Create("scan-" + which);
        var archivePath = Path.Join(scratch.Path, "image.tar");
        var archive = DockerArchive.Plan(img, null, Run.Log);
        using (var file = File.Create(archivePath)) archive.WriteTo(file);
        var (args, env) = ExternalScanners.Arguments(which, archivePath, fmt, output, threshold, db);
        return ExternalScanners.Run(which, tool, args, env, Run.Log);
    }

    private static T Status<T>(string what, Func<T> work)
    {
        if (Console.IsErrorRedirected) return work();
        T result = default!;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Status().Start(what, _ => result = work());
        return result;
    }

    private static void Write(ScanReport report, string fmt, string? output)
    {
        string body = fmt switch
        {
            "json" => Run.JsonText(report.ToJson()),
            "sarif" => Run.JsonText(ScanDocuments.Sarif(report)),
            "spdx" => Run.JsonText(ScanDocuments.Spdx(report)),
            "cyclonedx" => Run.JsonText(ScanDocuments.CycloneDx(report)),
            _ => Table(report, output == null && !Console.IsOutputRedirected),
        };
        if (output == null)
        {
            Console.Out.Write(body.EndsWith('\n') ? body : body + "\n");
            return;
        }
        using (var file = AtomicFile.Create(output))
        {
            file.Stream.Write(Encoding.UTF8.GetBytes(body.EndsWith('\n') ? body : body + "\n"));
            file.Commit(output);
        }
        Console.WriteLine($"{output}: {fmt} report of {report.Image}: {Counts(report)}");
    }

    private static string Counts(ScanReport r)
    {
        var parts = r.Counts.Where(kv => kv.Value > 0).OrderByDescending(kv => kv.Key).Select(kv => $"{kv.Value} {Ratings.Name(kv.Key)}");
        return $"{r.Inventory.Packages.Count} packages, {r.Findings.Count} vulnerabilit{(r.Findings.Count == 1 ? "y" : "ies")}" +
               (r.Findings.Count > 0 ? $" ({string.Join(", ", parts)})" : "");
    }

    private static string Table(ScanReport r, bool color)
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = color ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = color ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
        });
        console.Profile.Width = 160;
        var distro = r.Inventory.Distro is { } d ? d.PrettyName ?? $"{d.Id} {d.VersionId}" : "unknown distribution";
        console.WriteLine($"{r.Image} ({r.ManifestDigest[..19]}…): {distro}, {Counts(r)}");
        if (r.Findings.Count > 0)
        {
            var table = new Table().Border(TableBorder.Simple);
            foreach (var h in new[] { "SEVERITY", "VULNERABILITY", "PACKAGE", "INSTALLED", "FIXED IN", "SUMMARY" }) table.AddColumn(h);
            foreach (var f in r.Findings)
            {
                var sev = Ratings.Name(f.Severity).ToUpperInvariant();
                var style = f.Severity switch { Severity.Critical or Severity.High => "red", Severity.Medium => "yellow", _ => "default" };
                table.AddRow(new Markup($"[{style}]{Markup.Escape(sev)}[/]"), new Text(f.Id), new Text(f.Package.Name), new Text(f.Package.Version),
                    new Text(f.FixedVersion ?? "-"), new Text(Shorten(f.Summary ?? "", 60)));
            }
            console.Write(table);
        }
        return writer.ToString();
    }

    private static string Shorten(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";
}
