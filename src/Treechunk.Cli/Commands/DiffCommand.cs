using System.CommandLine;
using Spectre.Console;
using Treechunk.Chunking;
using Treechunk.Oci;
using Treechunk.Diff;
using Treechunk.Posix;

namespace Treechunk.Cli.Commands;

/// <summary>`oci diff OLD NEW`: the CLI face of <see cref="ImageDiff"/> (opening, printing; the work is in the library).</summary>
public static class DiffCommand
{
    /// <summary>Paths printed per kind in the human summary; --json and --html carry more.</summary>
    private const int FilesShown = 20;

    public static Command Create(string imageHelp)
    {
        var cmd = new Command("diff", """
            Show what an update from OLD to NEW downloads and changes.

            Layers of NEW whose digest OLD has are reused; the others are downloaded: "changed"
            when they take the place of a layer of OLD that is gone (the one holding most of
            their components, else the one at the same position), else "added"; OLD's gone
            layers that nothing replaces are "removed". Download = the compressed sizes of NEW's
            layers OLD lacks (each blob once); partial pull = what a client that fetches only the
            files it lacks would fetch (today the whole layer: zstd:chunked tables of contents
            are not read yet); with deltas = what a pull with NEW's delta artifact (oci delta
            create; found beside NEW) fetches: a layer's delta when OLD has the layers it starts
            from, else the partial pull's bytes. Components come from the layers' org.treechunk.components
            annotations: added, removed, or changed (in a downloaded layer, and its files/bytes
            annotation differs - evidence "stats" - or its layer holds changed files that no
            annotation pins on another component - evidence "files"). Files compare the two
            flattened trees (whiteouts and overrides applied) by type, mode, owner, xattrs,
            symlink target and content digest; mtimes are ignored. Comparing files reads every
            distinct layer once (shared ones too: a later layer can override or whiteout what
            they hold); --no-files reads manifests and configs only.

            --json fields: old/new {reference, manifest_digest, layers, size, uncompressed_size};
            totals {reused, changed, added, removed: {layers, size, uncompressed_size},
            download_bytes, partial_pull_bytes, delta_pull_bytes (null: no deltas beside NEW), delta_artifact} (reused/changed/added count NEW's layers,
            removed OLD's); layers {old, new: [{index, digest, diff_id, media_type, status,
            match, size, uncompressed_size, toc, components, and for new: download_bytes,
            partial_pull_bytes, partial_pull_method, delta_pull_bytes, delta_pull_method}]}; components {added, removed: [{name,
            layer, files, size}], changed: [{name, old_layer, new_layer, old_files, old_size,
            new_files, new_size, evidence}]}; files (null with --no-files) {added, removed,
            modified, list: [{path, status, old_type, new_type, old_digest, new_digest,
            old_size, new_size, old_layer, new_layer}]}. Sizes are bytes; size is compressed,
            uncompressed_size the tar's (null when the layer was not read); match is the index
            of the same or replaced layer in the other image; toc says the layer carries
            zstd:chunked table-of-contents annotations; partial_pull_method is "layer" (whole
            blob) or "toc" (zstd:chunked: what `treechunk oci pull` into a layout holding OLD
            fetches, to the byte: the TOC trailer, and the file frames OLD's TOCs lack); *_layer fields are layer indexes; digests are of regular files.

            --html FILE writes a self-contained page: both images' layers as bars on one byte
            scale, reused / downloaded, changed components named, and the totals.

            Examples:
              treechunk oci diff oci:./image:v1 oci:./image:v2
              treechunk oci diff docker://quay.io/example/os:41 docker://quay.io/example/os:42 --no-files --json
              treechunk oci diff --platform linux/arm64 oci:./multi:1 oci:./multi:2 --html update.html
            """);
        var oldArg = new Argument<string>("OLD") { Description = "The image a client has. " + imageHelp };
        var newArg = new Argument<string>("NEW") { Description = "The image it updates to (same forms)" };
        var json = GlobalOptions.Json();
        var html = new Option<string?>("--html") { Description = "Also write a self-contained HTML page of the diff to FILE", HelpName = "FILE" };
        var noFiles = new Option<bool>("--no-files") { Description = "Compare layers and components only: read no layer blob" };
        var noDeltas = new Option<bool>("--no-deltas") { Description = "Do not look for NEW's delta artifact (oci delta create) to count the download with deltas" };
        cmd.Arguments.Add(oldArg);
        cmd.Arguments.Add(newArg);
        cmd.Options.Add(GlobalOptions.Platform());
        foreach (var o in new Option[] { json, html, noFiles, noDeltas }) cmd.Options.Add(o);
        cmd.SetAction(p => Run.Guarded(p, () =>
        {
            string oldRef = p.GetValue(oldArg)!, newRef = p.GetValue(newArg)!;
            using var oldImage = Run.OpenImage(p, oldRef);
            using var newImage = Run.OpenImage(p, newRef);
            var result = ImageDiff.Compare(oldImage, newImage, new ImageDiffOptions
            {
                Files = !p.GetValue(noFiles),
                Deltas = !p.GetValue(noDeltas),
                PartialPull = new TocPartialPull(Run.Log),
                Log = Run.Log,
                Warn = Run.Warn,
            });
            Run.Log($"read {result.LayersRead} distinct layers ({result.LayersReread} again to hash files of shared layers)");
            if (p.GetValue(html) is { } page)
            {
                ImageDiffReport.WriteHtml(result, oldRef, newRef, page);
                Run.Log($"wrote {page}");
            }
            if (p.GetValue(json)) Run.PrintJson(ImageDiffReport.ToJson(result, oldRef, newRef));
            else PrintHuman(result, oldRef, newRef);
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static void PrintHuman(ImageDiffResult r, string oldRef, string newRef)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        // Piped output keeps whole digests and names on a line instead of 80 columns.
        if (Console.IsOutputRedirected) console.Profile.Width = 200;
        string U(long? v) => v is { } x ? Sizes.Format(x) : "-";

        Console.WriteLine($"OLD: {oldRef}  {r.Old.Descriptor.Digest}  {r.OldLayers.Count} layers");
        Console.WriteLine($"NEW: {newRef}  {r.New.Descriptor.Digest}  {r.NewLayers.Count} layers");

        var table = new Table().Border(TableBorder.Simple);
        foreach (var h in new[] { "NEW #", "STATUS", "DIGEST", "SIZE", "UNCOMPRESSED", "DOWNLOAD", "PARTIAL", "DELTA", "OLD #", "COMPONENTS" }) table.AddColumn(h);
        foreach (var c in new[] { 0, 3, 4, 5, 6, 7, 8 }) table.Columns[c].RightAligned();
        var changedIn = r.Components.Where(c => c.NewLayer != null && c.Status != ComponentStatus.Removed)
            .GroupBy(c => c.NewLayer!.Value).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var l in r.NewLayers)
        {
            var comps = Shorten(string.Join(",", l.Components), 50);
            if (changedIn.TryGetValue(l.Index, out var ch)) comps = Shorten(string.Join(",", ch.Select(c => (c.Status == ComponentStatus.Added ? "+" : "~") + c.Name)), 50);
            table.AddRow(Cell(l.Index.ToString()), Cell(ImageDiffReport.StatusName(l.Status)), Cell(Short(l.Digest)), Cell(Sizes.Format(l.Size)), Cell(U(l.UncompressedSize)),
                Cell(l.Status == LayerStatus.Reused ? "-" : Sizes.Format(l.DownloadBytes)), Cell(l.Status == LayerStatus.Reused ? "-" : Sizes.Format(l.PartialPullBytes)),
                Cell(l.Status == LayerStatus.Reused || l.DeltaPullBytes is not { } d ? "-" : Sizes.Format(d) + (l.DeltaPullMethod == "delta" ? "" : " (no delta)")),
                Cell(l.Match?.ToString() ?? "-"), Cell(comps));
        }
        foreach (var l in r.OldLayers.Where(l => l.Status == LayerStatus.Removed))
            table.AddRow(Cell("-"), Cell("removed"), Cell(Short(l.Digest)), Cell(Sizes.Format(l.Size)), Cell(U(l.UncompressedSize)), Cell("-"), Cell("-"), Cell("-"),
                Cell(l.Index.ToString()), Cell(Shorten(string.Join(",", l.Components), 50)));
        console.Write(table);

        var totals = new Table().Border(TableBorder.Simple);
        foreach (var h in new[] { "LAYERS", "COUNT", "COMPRESSED", "UNCOMPRESSED" }) totals.AddColumn(h);
        foreach (var c in new[] { 1, 2, 3 }) totals.Columns[c].RightAligned();
        foreach (var s in new[] { LayerStatus.Reused, LayerStatus.Changed, LayerStatus.Added, LayerStatus.Removed })
        {
            var b = ImageDiffReport.Totals(r, s);
            totals.AddRow(Cell(ImageDiffReport.StatusName(s)), Cell(b.Layers.ToString()), Cell(Sizes.Format(b.Size)), Cell(U(b.UncompressedSize)));
        }
        console.Write(totals);

        // Exact byte counts on plain lines: what a person compares, and what scripts may grep.
        Console.WriteLine($"Download (layer level): {r.DownloadBytes} bytes ({Sizes.Format(r.DownloadBytes)})");
        Console.WriteLine($"Download (partial pull): {r.PartialPullBytes} bytes ({Sizes.Format(r.PartialPullBytes)})");
        Console.WriteLine(r.DeltaPullBytes is { } deltaBytes
            ? $"Download (with deltas): {deltaBytes} bytes ({Sizes.Format(deltaBytes)}), deltas at {r.DeltaArtifact}"
            : "Download (with deltas): no delta artifact beside NEW (oci delta create makes one)");

        foreach (var s in new[] { ComponentStatus.Changed, ComponentStatus.Added, ComponentStatus.Removed })
        {
            var list = r.Components.Where(c => c.Status == s).ToList();
            Console.WriteLine($"Components {s.ToString().ToLowerInvariant()}: {list.Count}{(list.Count > 0 ? "  " + string.Join(", ", list.Select(c => c.Name)) : "")}");
        }

        if (r.Files is not { } files)
        {
            Console.WriteLine("Files: not compared (--no-files)");
            return;
        }
        int added = files.Count(f => f.Status == FileStatus.Added), removed = files.Count(f => f.Status == FileStatus.Removed),
            modified = files.Count(f => f.Status == FileStatus.Modified);
        Console.WriteLine($"Files: {added} added, {removed} removed, {modified} modified");
        foreach (var (status, mark) in new[] { (FileStatus.Modified, "~"), (FileStatus.Added, "+"), (FileStatus.Removed, "-") })
        {
            var list = files.Where(f => f.Status == status).ToList();
            foreach (var f in list.Take(FilesShown)) Console.WriteLine($"  {mark} {FileNames.Display(f.Path)}");
            if (list.Count > FilesShown) Console.WriteLine($"  {mark} ... and {list.Count - FilesShown} more (--json lists all)");
        }
    }

    private static Markup Cell(string text) => new(Markup.Escape(text));

    private static string Short(string digest) => digest.Length > 19 ? digest[..19] : digest;

    private static string Shorten(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";
}
