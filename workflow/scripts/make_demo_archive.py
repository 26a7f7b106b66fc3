from cnnstudy.base.jobs import start_job
from cnnstudy.data.demo_archive import write_demo_archive

start_job(snakemake)
write_demo_archive(
    snakemake.output[0],
    name=snakemake.params.name,
    seed=snakemake.params.seed,
    train_per_class=snakemake.params.train_per_class,
    val_per_class=snakemake.params.val_per_class,
    image_px=snakemake.params.get("image_px", (48, 96)),
)
