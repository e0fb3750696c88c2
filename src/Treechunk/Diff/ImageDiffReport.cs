using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Chunking;
using Treechunk.IO;
using Treechunk.Oci;

namespace Treechunk.Diff;

/// <summary>
/// The forms an <see cref="ImageDiffResult"/> is shown in: the JSON of `oci diff --json` (field
/// names are an interface: scripts read them; documented in the command's help) and the
/// self-contained HTML page of --html. Both are made from the same totals, so the page shows the
/// numbers the JSON has.
/// </summary>
public static class ImageDiffReport
{
    public sealed record Bucket(int Layers, long Size, long? UncompressedSize);

    /// <summary>Layer counts and sizes per status: reused, changed and added are NEW's layers, removed are OLD's.</summary>
    public static Bucket Totals(ImageDiffResult r, LayerStatus status)
    {
        var layers = (status == LayerStatus.Removed ? r.OldLayers : r.NewLayers).Where(l => l.Status == status).ToList();
        return new Bucket(layers.Count, layers.Sum(l => l.Size), SumKnown(layers));
    }

    private static long? SumKnown(IEnumerable<LayerDiff> layers)
    {
        long sum = 0;
        foreach (var l in layers)
        {
            if (l.UncompressedSize is not { } u) return null;
            sum += u;
        }
        return sum;
    }

    public static string StatusName(LayerStatus s) => s.ToString().ToLowerInvariant();

    public static JsonObject ToJson(ImageDiffResult r, string oldReference, string newReference)
    {
        JsonObject ImageJson(Image img, string reference, IReadOnlyList<LayerDiff> layers) => new()
        {
            ["reference"] = reference,
            ["manifest_digest"] = img.Descriptor.Digest,
            ["layers"] = layers.Count,
            ["size"] = layers.Sum(l => l.Size),
            ["uncompressed_size"] = SumKnown(layers),
        };
        JsonObject BucketJson(LayerStatus s)
        {
            var b = Totals(r, s);
            return new JsonObject { ["layers"] = b.Layers, ["size"] = b.Size, ["uncompressed_size"] = b.UncompressedSize };
        }
        JsonArray Layers(IReadOnlyList<LayerDiff> layers, bool isNew) => new(layers.Select(l =>
        {
            var o = new JsonObject
            {
                ["index"] = l.Index,
                ["digest"] = l.Digest,
                ["diff_id"] = l.DiffId,
                ["media_type"] = l.Descriptor.MediaType,
                ["status"] = StatusName(l.Status),
                ["match"] = l.Match,
                ["size"] = l.Size,
                ["uncompressed_size"] = l.UncompressedSize,
                ["toc"] = l.HasToc,
                ["components"] = new JsonArray(l.Components.Select(c => (JsonNode)JsonValue.Create(c)!).ToArray()),
            };
            if (isNew)
            {
                o["download_bytes"] = l.DownloadBytes;
                o["partial_pull_bytes"] = l.PartialPullBytes;
                o["partial_pull_method"] = l.PartialPullMethod;
                o["delta_pull_bytes"] = l.DeltaPullBytes;
                o["delta_pull_method"] = l.DeltaPullMethod;
            }
            return (JsonNode)o;
        }).ToArray());
        JsonArray Components(ComponentStatus s) => new(r.Components.Where(c => c.Status == s).Select(c => (JsonNode)(s switch
        {
            ComponentStatus.Added => new JsonObject { ["name"] = c.Name, ["layer"] = c.NewLayer, ["files"] = c.NewFiles, ["size"] = c.NewBytes },
            ComponentStatus.Removed => new JsonObject { ["name"] = c.Name, ["layer"] = c.OldLayer, ["files"] = c.OldFiles, ["size"] = c.OldBytes },
            _ => new JsonObject
            {
                ["name"] = c.Name, ["old_layer"] = c.OldLayer, ["new_layer"] = c.NewLayer, ["old_files"] = c.OldFiles, ["old_size"] = c.OldBytes,
                ["new_files"] = c.NewFiles, ["new_size"] = c.NewBytes, ["evidence"] = c.Evidence,
            },
        })).ToArray());

        JsonNode? files = null;
        if (r.Files is { } list)
        {
            files = new JsonObject
            {
                ["added"] = list.Count(f => f.Status == FileStatus.Added),
                ["removed"] = list.Count(f => f.Status == FileStatus.Removed),
                ["modified"] = list.Count(f => f.Status == FileStatus.Modified),
                ["list"] = new JsonArray(list.Select(f => (JsonNode)new JsonObject
                {
                    ["path"] = f.Path,
                    ["status"] = f.Status.ToString().ToLowerInvariant(),
                    ["old_type"] = f.OldType,
                    ["new_type"] = f.NewType,
                    ["old_digest"] = f.OldDigest,
                    ["new_digest"] = f.NewDigest,
                    ["old_size"] = f.OldSize,
                    ["new_size"] = f.NewSize,
                    ["old_layer"] = f.OldLayer,
                    ["new_layer"] = f.NewLayer,
                }).ToArray()),
            };
        }

        return new JsonObject
        {
            ["old"] = ImageJson(r.Old, oldReference, r.OldLayers),
            ["new"] = ImageJson(r.New, newReference, r.NewLayers),
            ["totals"] = new JsonObject
            {
                ["reused"] = BucketJson(LayerStatus.Reused),
                ["changed"] = BucketJson(LayerStatus.Changed),
                ["added"] = BucketJson(LayerStatus.Added),
                ["removed"] = BucketJson(LayerStatus.Removed),
                ["download_bytes"] = r.DownloadBytes,
                ["partial_pull_bytes"] = r.PartialPullBytes,
                ["delta_pull_bytes"] = r.DeltaPullBytes,
                ["delta_artifact"] = r.DeltaArtifact,
            },
            ["layers"] = new JsonObject { ["old"] = Layers(r.OldLayers, false), ["new"] = Layers(r.NewLayers, true) },
            ["components"] = new JsonObject
            {
                ["added"] = Components(ComponentStatus.Added),
                ["removed"] = Components(ComponentStatus.Removed),
                ["changed"] = Components(ComponentStatus.Changed),
            },
            ["files"] = files,
        };
    }

    /// <summary>Files listed per kind on the page; the JSON has them all.</summary>
    public const int HtmlFileLimit = 500;

    /// <summary>
    /// A page with no external assets (no scripts, fonts or images: it opens offline and from
    /// a mail attachment): the two images' layers as bars on one byte scale, coloured reused /
    /// downloaded / gone, the changed components named on their layers, and the totals. Each
    /// number has an element id and its exact value in data-value, for tools and tests.
    /// </summary>
    public static string ToHtml(ImageDiffResult r, string oldReference, string newReference)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        static string N(long v) => v.ToString(CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        var changedByNewLayer = r.Components.Where(c => c.Status is ComponentStatus.Changed or ComponentStatus.Added && c.NewLayer != null)
            .GroupBy(c => c.NewLayer!.Value).ToDictionary(g => g.Key, g => g.Select(c => c.Name).ToList());
        long oldTotal = r.OldLayers.Sum(l => l.Size), newTotal = r.NewLayers.Sum(l => l.Size);
        long scale = Math.Max(1, Math.Max(oldTotal, newTotal));

        sb.Append("""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>treechunk oci diff</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
            code { font-size: 12px; }
            table.totals { border-collapse: collapse; margin: 12px 0; }
            table.totals th, table.totals td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
            table.totals th:first-child { text-align: left; }
            .headline { font-size: 17px; }
            .image { margin: 14px 0; }
            .image .name { font-weight: 600; margin-bottom: 4px; }
            .bar { display: flex; height: 46px; border: 1px solid #444; background: #f4f4f4; }
            .layer { box-sizing: border-box; min-width: 3px; border-right: 1px solid #fff; overflow: hidden;
                     white-space: nowrap; font-size: 11px; padding: 2px 3px; color: #fff; }
            .layer.reused { background: #3a8f4a; }
            .layer.downloaded { background: #d9480f; font-weight: 700; }
            .layer.gone { background: #868e96; }
            .legend span { display: inline-block; width: 14px; height: 14px; vertical-align: middle; margin: 0 4px 0 14px; }
            ul.files { font-family: monospace; font-size: 12px; }
            </style>
            </head>
            <body>

            """);
        sb.Append($"<h1>Update from OLD to NEW</h1>\n<p>OLD: <code id=\"old-reference\">{E(oldReference)}</code> <code>{E(r.Old.Descriptor.Digest)}</code><br>\n");
        sb.Append($"NEW: <code id=\"new-reference\">{E(newReference)}</code> <code>{E(r.New.Descriptor.Digest)}</code></p>\n");

        // The cost first, in words and numbers, then the bars, then the breakdown.
        string Num(string id, long value) => $"<span id=\"{id}\" data-value=\"{N(value)}\">{N(value)}</span>";
        sb.Append($"<p class=\"headline\">Download: <b>{E(Sizes.Format(r.DownloadBytes))}</b> ({Num("download-bytes", r.DownloadBytes)} bytes) of NEW's " +
                  $"{E(Sizes.Format(newTotal))} ({Num("new-size", newTotal)} bytes); with partial pull <b>{E(Sizes.Format(r.PartialPullBytes))}</b> " +
                  $"({Num("partial-pull-bytes", r.PartialPullBytes)} bytes)" +
                  (r.DeltaPullBytes is { } deltaBytes ? $"; with deltas <b>{E(Sizes.Format(deltaBytes))}</b> ({Num("delta-pull-bytes", deltaBytes)} bytes)" : "; no deltas attached to NEW") +
                  $". OLD is {E(Sizes.Format(oldTotal))} ({Num("old-size", oldTotal)} bytes).</p>\n");
        sb.Append("<h2>Layers</h2>\n<p class=\"legend\">Bars share one byte scale. <span style=\"background:#3a8f4a\"></span>reused " +
                  "<span style=\"background:#d9480f\"></span>downloaded <span style=\"background:#868e96\"></span>not in NEW</p>\n");
        void Bar(string id, string title, IReadOnlyList<LayerDiff> layers, long total, bool isNew)
        {
            sb.Append($"<div class=\"image\"><div class=\"name\">{E(title)} ({N(layers.Count)} layers, {E(Sizes.Format(total))})</div>\n");
            sb.Append($"<div class=\"bar\" id=\"{id}\" style=\"width: {(total * 100.0 / scale).ToString("0.###", CultureInfo.InvariantCulture)}%\">\n");
            foreach (var l in layers)
            {
                var cls = l.Status == LayerStatus.Reused ? "reused" : isNew ? "downloaded" : "gone";
                var width = total > 0 ? l.Size * 100.0 / total : 0;
                var named = isNew && changedByNewLayer.TryGetValue(l.Index, out var names) ? names : [];
                // Downloaded layers say what changed in them; the others what they hold.
                var label = named.Count > 0 ? string.Join(", ", named) : l.Components.Count > 0 ? string.Join(", ", l.Components) : $"#{l.Index}";
                var tip = $"#{l.Index} {StatusName(l.Status)} {l.Digest} {Sizes.Format(l.Size)}" +
                          (l.Components.Count > 0 ? $"\ncomponents: {string.Join(", ", l.Components)}" : "") +
                          (named.Count > 0 ? $"\nchanged: {string.Join(", ", named)}" : "");
                sb.Append($"<div class=\"layer {cls}\" style=\"width: {width.ToString("0.###", CultureInfo.InvariantCulture)}%\" data-index=\"{N(l.Index)}\" " +
                          $"data-status=\"{StatusName(l.Status)}\" data-digest=\"{E(l.Digest)}\" data-size=\"{N(l.Size)}\" " +
                          $"data-download=\"{N(l.DownloadBytes)}\" data-delta=\"{(l.DeltaPullBytes is { } db ? N(db) : "")}\" title=\"{E(tip)}\">{E(label)}</div>\n");
            }
            sb.Append("</div></div>\n");
        }
        Bar("old-layers", "OLD", r.OldLayers, oldTotal, false);
        Bar("new-layers", "NEW", r.NewLayers, newTotal, true);

        sb.Append("<table class=\"totals\">\n<tr><th>Layers</th><th>count</th><th>compressed (bytes)</th><th>uncompressed (bytes)</th></tr>\n");
        foreach (var s in new[] { LayerStatus.Reused, LayerStatus.Changed, LayerStatus.Added, LayerStatus.Removed })
        {
            var b = Totals(r, s);
            var name = StatusName(s);
            sb.Append($"<tr><th>{name}{(s == LayerStatus.Removed ? " (OLD's)" : "")}</th><td>{Num($"{name}-layers", b.Layers)}</td>" +
                      $"<td>{Num($"{name}-size", b.Size)} <small>{E(Sizes.Format(b.Size))}</small></td>" +
                      $"<td>{(b.UncompressedSize is { } u ? $"{Num($"{name}-uncompressed-size", u)} <small>{E(Sizes.Format(u))}</small>" : "-")}</td></tr>\n");
        }
        sb.Append("</table>\n");
        if (r.Files is { } counts)
            sb.Append($"<p>Files: {Num("files-added", counts.Count(f => f.Status == FileStatus.Added))} added, " +
                      $"{Num("files-removed", counts.Count(f => f.Status == FileStatus.Removed))} removed, " +
                      $"{Num("files-modified", counts.Count(f => f.Status == FileStatus.Modified))} modified.</p>\n");
        else sb.Append("<p>Files: not compared.</p>\n");

        sb.Append("<h2>Components</h2>\n");
        foreach (var s in new[] { ComponentStatus.Changed, ComponentStatus.Added, ComponentStatus.Removed })
        {
            var list = r.Components.Where(c => c.Status == s).ToList();
            var name = s.ToString().ToLowerInvariant();
            sb.Append($"<p>{E(s.ToString())} (<span id=\"components-{name}\" data-value=\"{N(list.Count)}\">{N(list.Count)}</span>): ");
            sb.Append(list.Count == 0 ? "none" : string.Join(", ", list.Select(c => $"<b class=\"component\" data-status=\"{name}\">{E(c.Name)}</b>")));
            sb.Append("</p>\n");
        }

        if (r.Files is { } all)
        {
            sb.Append("<h2>Files</h2>\n");
            foreach (var s in new[] { FileStatus.Modified, FileStatus.Added, FileStatus.Removed })
            {
                var list = all.Where(f => f.Status == s).ToList();
                if (list.Count == 0) continue;
                sb.Append($"<h3>{E(s.ToString())}</h3>\n<ul class=\"files\">\n");
                foreach (var f in list.Take(HtmlFileLimit)) sb.Append($"<li>{E(Posix.FileNames.Display(f.Path))}</li>\n");
                if (list.Count > HtmlFileLimit) sb.Append($"<li>… and {N(list.Count - HtmlFileLimit)} more (see --json)</li>\n");
                sb.Append("</ul>\n");
            }
        }
        sb.Append("</body>\n</html>\n");
        return sb.ToString();
    }

    /// <summary>Writes the page under a temp name beside <paramref name="path"/> and renames it, so a reader never sees half a page.</summary>
    public static void WriteHtml(ImageDiffResult r, string oldReference, string newReference, string path)
    {
        var html = ToHtml(r, oldReference, newReference);
        try
        {
            using var file = AtomicFile.Create(path);
            file.Stream.Write(Encoding.UTF8.GetBytes(html));
            file.Commit(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TreechunkException($"cannot write {path}: {e.Message}", ExitCodes.EnvironmentError, e);
        }
    }
}
