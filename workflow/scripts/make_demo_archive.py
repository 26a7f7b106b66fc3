from cnnstudy.demo_data import write_demo_archive
from cnnstudy.jobs import start_job

start_job(snakemake)
write_demo_archive(
    snakemake.output[0],
    name=snakemake.params.name,
    seed=snakemake.params.seed,
    train_per_class=snakemake.params.train_per_class,
    val_per_class=snakemake.params.val_per_class,
    image_px=snakemake.params.get("image_px", (48, 96)),
)
