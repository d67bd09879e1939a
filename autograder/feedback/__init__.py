"""What people read of one grade: the student's feedback and the instructor's terminal. Reporters
only read the result model (records.GradeReport); no grading logic here.

- causes.py    one item per cause: the failed checks one mistake explains, with the points it cost
- report.py    one GradeReport as a terminal report (rich) and as Gradescope's results.json
- terminal.py  the one sanitiser for student-controlled text on its way to a terminal

A whole class's CSV, gradebook and HTML pages are batch/'s.
"""
