"""Adapters between the grading pipeline and the platforms that call it.

    gradescope_build.py  the autograder zip an instructor uploads (setup.sh, run_autograder, the kit)
    gradescope.py        inside Gradescope's container: grade /autograder/submission, write results.json
    nbgrader_release.py  `autograder release`: the student notebook from the source, by nbgrader
    nbgrader_stamp.py    the preprocessor stamping points and stated values from grading.toml
                         (`autograder.stamp` is its name in instructors' nbgrader_config.py)
    nbgrader_autograde.py  nbgrader's own Autograde grading in the kit's sandbox (KitGrade, KitCellMetadata),
                           and `autograder nbgrader autograde`, which runs it whatever the course's config
    nbgrader_course.py   `autograder nbgrader setup` and `doctor`: does a course's config grade through the kit
    kernel_hook.py       `grade_part("<part>")`, called by hidden test cells inside a Jupyter kernel
                         (by the name `autograder.notebook`)
"""
