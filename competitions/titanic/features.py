"""Titanic features from the fast.ai course (lesson 5): title, deck, family size, ticket
frequency and log fare. Called on train and test rows together, before the folds are made."""

import numpy as np
import pandas as pd


def add_features(df: pd.DataFrame) -> pd.DataFrame:
    df["LogFare"] = np.log1p(df["Fare"])
    df["Deck"] = df["Cabin"].str[0].map(dict(A="ABC", B="ABC", C="ABC", D="DE", E="DE", F="FG", G="FG"))
    df["Family"] = df["SibSp"] + df["Parch"]
    df["Alone"] = (df["Family"] == 0).astype(int)
    # how many passengers share the ticket: unsupervised over train+test, no target involved
    df["TicketFreq"] = df.groupby("Ticket")["Ticket"].transform("count")
    title = df["Name"].str.split(", ", expand=True)[1].str.split(".", expand=True)[0]
    df["Title"] = title.map(dict(Mr="Mr", Miss="Miss", Mrs="Mrs", Master="Master"))
    return df
