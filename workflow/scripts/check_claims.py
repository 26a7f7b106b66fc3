from cnnstudy.analysis.claims import check_claims, data_premise, load_runs, pairwise_comparisons
from cnnstudy.analysis.claims_tables import write_claims, write_comparisons
from cnnstudy.analysis.tables import data_banner
from cnnstudy.base.jobs import start_job
from cnnstudy.figures.claims import plot_comparison_effects

start_job(snakemake)
output, study = snakemake.output, snakemake.params.study
runs = load_runs(snakemake.input.metrics, snakemake.input.predictions, snakemake.input.histories)
settings = study["claims"]
comparisons = pairwise_comparisons(
    runs,
    snakemake.params.models,
    settings["confidence"],
    settings["bootstrap_resamples"],
    settings["bootstrap_seed"],
)
banner = data_banner([run.metrics for run in runs], study)
write_comparisons(
    comparisons, output.comparisons_csv, output.comparisons_markdown, output.comparisons_html, banner
)
claims, pairs = check_claims(runs, settings, study)
write_claims(
    claims, pairs, output.claims_csv, output.claims_markdown, output.claims_html, data_premise(runs, study)
)
plot_comparison_effects(output.claims_csv, output.figure, snakemake.params.models)
